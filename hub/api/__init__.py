"""The ledger's REST API inside the hub (``/hub/api/hpchub/v1/``), see docs/api.md.

- ``access``: who may see and change what in a project (pure).
- ``views``: request parsing and response shapes (pure).
- ``handlers``: the JupyterHub API handlers and their routes.
- ``config``: ``configure_api(c)`` adds the handlers, the custom scopes and the user
  role's grants to a hub configuration; ``HPCHubAPI`` holds the API's settings.
"""
