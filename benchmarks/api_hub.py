"""A JupyterHub that serves the ledger's REST API and hpchub's pages and spawns nothing, for
measuring them over HTTP without a cluster: ``api_hub(ledger_url, work, users)``.

The hub runs this checkout's API handlers and pages (``configure_api``, ``configure_pages``,
its templates) on a ledger database the benchmark built, with JupyterHub's DummyAuthenticator, no proxy (a proxy class that keeps its
routes in memory: no page is served, no server spawned) and one API token per user given
(the first user is a hub admin with a configured token; with it the benchmark makes the
others and a token for each user through JupyterHub's REST API: tokens with the scopes their
roles give, as a logged-in user's). Requests go to the hub's own port, where
JupyterHub serves ``/hub/``: what is measured is tornado, JupyterHub's token check and scopes,
the handler, the ledger and the JSON or HTML, as a client sees them (the API with a token, the
pages with a login cookie). It is started
as its own process (its own event loop and ledger, like the hub) on a free port, in ``work``,
and stopped by its pid at the end of the block, also on an error.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests
from common import REPO

from hub.demo.devtools.pgserver import free_port

CONFIG = '''\
import sys
sys.path.insert(0, {repo!r})
from jupyterhub.proxy import Proxy
from hub.api.config import configure_api
from hub.pages import configure_pages


class MemoryProxy(Proxy):
    """No proxy: the routes are kept here and nothing is served through them."""

    should_start = False
    routes = {{}}

    async def add_route(self, routespec, target, data):
        self.routes[routespec] = {{"routespec": routespec, "target": target, "data": data}}

    async def delete_route(self, routespec):
        self.routes.pop(routespec, None)

    async def get_all_routes(self):
        return dict(self.routes)


c.JupyterHub.proxy_class = MemoryProxy
c.JupyterHub.authenticator_class = "dummy"
c.JupyterHub.bind_url = "http://127.0.0.1:{proxy_port}"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{port}"
c.JupyterHub.db_url = "sqlite:///{work}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{work}/cookie_secret"
c.JupyterHub.pid_file = "{work}/jupyterhub.pid"
c.JupyterHub.cleanup_servers = False
c.JupyterHub.log_level = "WARN"
c.Authenticator.allow_all = True
c.Authenticator.admin_users = {{{admin!r}}}
c.JupyterHub.api_tokens = {tokens!r}
c.JupyterHub.load_groups = {groups!r}
c.HPCHubLedger.db_url = {ledger_url!r}
c.JupyterHub.template_paths = [{templates!r}]
configure_api(c)
configure_pages(c)
'''


@dataclass
class ApiHub:
    root: str  # http://127.0.0.1:PORT
    tokens: dict[str, str]  # user -> token

    def session(self, user: str) -> requests.Session:
        """The API with the user's token."""
        session = requests.Session()
        session.headers["Authorization"] = f"token {self.tokens[user]}"
        return session

    def browser(self, user: str) -> requests.Session:
        """The pages with the user's login cookie (the pages take no token): the login form of
        DummyAuthenticator, which takes any password, sent back with its XSRF cookie."""
        session = requests.Session()
        session.get(f"{self.root}/hub/login").raise_for_status()
        answer = session.post(
            f"{self.root}/hub/login?next=/hub/home", allow_redirects=False,
            data={"username": user, "password": "benchmark", "_xsrf": session.cookies.get("_xsrf", "")},
        )  # fmt: skip
        if answer.status_code != 302:
            raise RuntimeError(f"the login of {user} answered {answer.status_code}: {answer.text[:300]}")
        return session


@contextmanager
def api_hub(ledger_url: str, work: Path, users: list[str], groups: dict[str, list[str]] | None = None, *,
            timeout: float = 60) -> Iterator[ApiHub]:  # fmt: skip
    """The hub for ``users`` (the first an admin) and JupyterHub ``groups`` of them (which
    give roles, e.g. the reviewers'), with a token for each user."""
    work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    admin_token = secrets.token_hex(16)
    config = work / "jupyterhub_config.py"
    config.write_text(CONFIG.format(repo=str(REPO), proxy_port=free_port(), port=port, work=work, admin=users[0],
                                    tokens={admin_token: users[0]},
                                    groups={name: {"users": members} for name, members in (groups or {}).items()},
                                    ledger_url=ledger_url, templates=str(REPO / "templates")))  # fmt: skip
    log = (work / "jupyterhub.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyterhub", "-f", str(config)],
        cwd=work, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    hub = ApiHub(f"http://127.0.0.1:{port}", {users[0]: admin_token})
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"the hub exited ({process.returncode}): {(work / 'jupyterhub.log').read_text()[-3000:]}"
                )
            try:
                if requests.get(f"http://127.0.0.1:{port}/hub/api/", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the hub did not answer in {timeout:g} s")
            time.sleep(0.2)
        rest = f"http://127.0.0.1:{port}/hub/api"
        admin = hub.session(users[0])
        for user in users:
            if admin.get(f"{rest}/users/{user}").status_code == 404:
                admin.post(f"{rest}/users/{user}").raise_for_status()
            answer = admin.post(f"{rest}/users/{user}/tokens", json={"note": "benchmark"})
            answer.raise_for_status()
            hub.tokens[user] = answer.json()["token"]
        yield hub
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()
