"""``POST /hub/api/hpchub/v1/users/{user}/servers/{server}/activity``: a session's own report
of what it is doing, for the idle stop (see hub/ledger/idle.py and docs/ledger.md).

The session's Jupyter server extension (``hpchub_notebook/activity.py``) posts it with the
server's own token, like JupyterHub's own activity reporting. The token's
``custom:hpchub:report-activity!server=USER/SERVER`` scope (``Spawner.server_token_scopes``)
lets it report for that one server; the handler also requires the caller to be that server's
user, so an admin or a service cannot make someone's session look used or idle. The
report is validated (400 naming the field) and kept as the session's latest in the ledger;
the reconciler reads it from there and never sends a request to a session.
"""

from __future__ import annotations

from jupyterhub.scopes import needs_scope
from tornado import web

from hub.api.handlers import _NAME, API_PREFIX, NO_SESSION_MESSAGE, SessionAPIHandler
from hub.api.scopes import ACTIVITY_SCOPE
from hub.ledger.idle import ActivityAnswerError, parse_activity


class ActivityReportHandler(SessionAPIHandler):
    """``POST .../activity`` with the extension's JSON report: 204, or 400 naming the field, 404
    for a server that is not the caller's own or holds no session."""

    @needs_scope(ACTIVITY_SCOPE)
    async def post(self, user_name: str, server_name: str = "") -> None:
        if self.caller().name != user_name:
            raise web.HTTPError(404, NO_SESSION_MESSAGE.format(server=server_name, user=user_name))
        try:
            activity = parse_activity(self.get_json_body())
        except ActivityAnswerError as exc:
            raise web.HTTPError(400, f"activity report: {exc}") from None
        ledger = await self.ledger()
        _spawner, info = await self.find_session(ledger, user_name, server_name)
        await self.run(ledger.record_activity, info.id, activity)
        self.set_status(204)
        self.finish()


ROUTES = [
    (rf"{API_PREFIX}/users/{_NAME}/servers/([^/]*)/activity", ActivityReportHandler),
    (rf"{API_PREFIX}/users/{_NAME}/server/activity", ActivityReportHandler),
]
