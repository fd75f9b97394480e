"""A safe replacement for batchspawner's ``/hub/api/batchspawner`` handler.

batchspawner 1.3.0 registers a handler that does ``setattr(spawner, key, value)``
for every key it is sent, authenticated by the server's own API token, which the
user can read inside the job: posting ``{"exec_prefix": "<shell>"}`` made the
hub run that shell as root. This handler accepts exactly ``{"port": <int>}``,
only with the server's own token, and only while that server is starting.

Importing this module replaces the stock handler in JupyterHub's handler list
(the hub builds its routes from that list after the spawner class is loaded).
"""

from __future__ import annotations

import json
import logging

import batchspawner.api  # noqa: F401  (registers the stock handler, which we replace)
from jupyterhub.apihandlers import APIHandler, default_handlers
from tornado import web

log = logging.getLogger(__name__)
ROUTE = r"/api/batchspawner"


def parse_port_payload(body: object) -> int:
    """The only accepted body: ``{"port": N}`` with 1 <= N <= 65535 (a real int)."""
    if not isinstance(body, dict) or set(body) != {"port"}:
        raise ValueError('body must be exactly {"port": <integer>}')
    port = body["port"]
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ValueError("port must be an integer from 1 to 65535")
    return port


class SafeBatchSpawnerAPIHandler(APIHandler):
    """Accept the single-user server's port, and nothing else."""

    @web.authenticated
    def post(self) -> None:
        user = self.current_user
        token = self.get_auth_token()
        spawner = None
        if token and hasattr(user, "spawners"):
            for candidate in user.spawners.values():
                if candidate.api_token and candidate.api_token == token:
                    spawner = candidate
                    break
        if spawner is None:
            # Only a server's own token may report that server's port.
            raise web.HTTPError(403, "only a server's own token may report its port")
        if not getattr(spawner, "accepts_port_report", False):
            raise web.HTTPError(409, "this server is not waiting for its port")
        try:
            body = json.loads(self.request.body or b"null")
            port = parse_port_payload(body)
        except ValueError as exc:
            log.warning("refused batchspawner report for %s: %s", spawner._log_name, exc)
            raise web.HTTPError(400, str(exc)) from None
        spawner.report_port(port)
        self.set_status(201)
        self.finish(json.dumps({"message": "port recorded"}))


def install_safe_handler() -> None:
    """Replace batchspawner's handler in JupyterHub's default handler list (idempotent)."""
    replaced = False
    for index, entry in enumerate(default_handlers):
        if entry[0] == ROUTE:
            default_handlers[index] = (ROUTE, SafeBatchSpawnerAPIHandler)
            replaced = True
    if not replaced:
        default_handlers.append((ROUTE, SafeBatchSpawnerAPIHandler))


install_safe_handler()
