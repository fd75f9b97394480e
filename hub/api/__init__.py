"""The ledger's REST API inside the hub (``/hub/api/hpchub/v1/``), see docs/api.md.

- ``scopes``: the custom scopes (a leaf: handlers and the wiring both read it).
- ``settings``: ``HPCHubAPI``, the API's settings.
- ``access``: who may see and change what in a project (pure).
- ``views``: request parsing and response shapes (pure).
- ``handlers``, ``activity``, ``lab_hours``, ``courses``, ``environments``, ``allocations``
  (calls and proposals), ``allocation_reviews`` (review, decision, project reports): the JupyterHub
  API handlers, each module with its ``ROUTES``; :data:`ROUTES` collects them here, the way
  JupyterHub's own ``apihandlers`` package collects its ``default_handlers``.
- ``config``: ``configure_api(c)`` adds the routes, the custom scopes and the user role's
  grants to a hub configuration.
"""

from __future__ import annotations

from hub.api import activity, allocation_reviews, allocations, courses, environments, handlers, lab_hours

# In the order tornado tries them (the first match wins).
ROUTES = [
    *handlers.ROUTES, *activity.ROUTES, *lab_hours.ROUTES, *courses.ROUTES, *environments.ROUTES,
    *allocations.ROUTES, *allocation_reviews.ROUTES,
]  # fmt: skip
