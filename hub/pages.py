"""What the hub's pages show besides JupyterHub's own: template variables computed per user."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from urllib.parse import quote

from hub.api.handlers import session_job_view
from hub.api.sessions import JobView, format_duration, session_json
from hub.ledger import LedgerError
from hub.ledger.enforce import Banner, period_banners, warnings_for
from hub.ledger.runtime import ledger_from_config
from hub.project_pages import gather
from hub.project_pages.environments import ROUTES as ENVIRONMENT_ROUTES
from hub.project_pages.handlers import ROUTES
from hub.static_files import ROUTES as STATIC_ROUTES

log = logging.getLogger(__name__)


def _for_user(config, what: str, compute):
    """A ``template_vars`` callable: ``compute(ledger, user)`` for a logged-in user, [] without a
    user or a ledger, and [] (logged) when the ledger fails: a page never breaks for it."""

    def value(user) -> list:
        if user is None:
            return []
        ledger = ledger_from_config(config)
        if ledger is None:
            return []
        try:
            return compute(ledger, user)
        except LedgerError as exc:
            log.warning("%s of %s: %s", what, user.name, exc)
            return []

    return value


def _budget_banners(ledger, user) -> list[Banner]:
    """The user's budget warnings and the sessions the budget watch or Slurm stopped lately."""
    memberships = ledger.memberships(user.name)
    usages = [ledger.figures(project.name) for project, _role in memberships]
    stopped = ledger.recently_stopped(user.name, datetime.now(timezone.utc))
    stopped_banners = [Banner(stop.project, 100, stop.banner_text()) for stop in stopped]
    period = period_banners([project for project, _role in memberships], ledger.today())
    return stopped_banners + period + warnings_for(user.name, usages)


def budget_banners(config):
    return _for_user(config, "budget banners", _budget_banners)


def _when(iso: str | None) -> str:
    """``2026-03-02 09:00 UTC`` from an ISO time; ``-`` for None."""
    if not iso:
        return "-"
    return datetime.fromisoformat(iso).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def session_row(user_name: str, info, spawner, now: datetime) -> dict:
    """One row of "Your sessions": the API's ``session`` answer plus what the page prints."""

    job = session_job_view(spawner, info) if spawner is not None else JobView()
    row = session_json(info, now, job)
    server = info.server_name
    where = f"servers/{quote(server, safe='')}" if server else "server"
    gpus = f"{info.gpus} x {info.gpu_type}" if info.gpus and info.gpu_type else "no GPU"
    return {
        **row,
        "server_label": server or "(default)",
        "gpus_label": gpus,
        "start_label": _when(row["start"]),
        "end_label": _when(row["end"]),
        "elapsed_label": format_duration(row["elapsed_seconds"]) if row["start"] else "-",
        "left_label": format_duration(row["seconds_left"]),
        "extend_path": f"api/hpchub/v1/users/{quote(user_name, safe='')}/{where}/extend",
        "stop_path": f"api/users/{quote(user_name, safe='')}/{where}",
        "user_path": f"api/users/{quote(user_name, safe='')}",
        "project_path": f"hpchub/projects/{quote(info.project, safe='')}",
        "dom_id": f"hpchub-session-{info.id}",
    }


def _session_rows(ledger, user) -> list[dict]:
    """The user's admitted and running sessions, one row each."""
    infos = ledger.active_sessions(user.name)
    now = ledger.clock()
    spawners = getattr(user, "spawners", {}) or {}
    answer = []
    for info in infos:
        try:
            answer.append(session_row(user.name, info, spawners.get(info.server_name), now))
        except Exception as exc:  # noqa: BLE001  (one odd session must not break the home page)
            log.warning("session %s of %s: %s", info.id, user.name, exc)
    return answer


def session_rows(config):
    return _for_user(config, "sessions", _session_rows)


class _Lazy:
    """A list computed on first use: a template variable only the home page reads costs the
    other pages nothing (JupyterHub calls every ``template_vars`` callable on every page)."""

    def __init__(self, compute) -> None:
        self._compute = compute
        self._value: list | None = None

    def _get(self) -> list:
        if self._value is None:
            self._value = self._compute()
        return self._value

    def __iter__(self):
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())

    def __bool__(self) -> bool:
        return bool(self._get())


def _my_projects(ledger, user) -> list[dict]:

    return gather.my_projects(ledger, user.name)


def my_projects(config):
    """The home page's "Your projects" (computed only where a template reads it)."""
    value = _for_user(config, "projects", _my_projects)
    return lambda user: _Lazy(lambda: value(user))


def configure_pages(c, *, apply_url: str = "") -> None:
    """Template variables of hpchub's templates (templates/*.html extend JupyterHub's) and
    hpchub's own pages (the project and admin pages, ``c.JupyterHub.extra_handlers``)."""

    c.JupyterHub.template_vars = {
        "hpchub_apply_url": apply_url,
        "hpchub_budget_banners": budget_banners(c),
        "hpchub_sessions": session_rows(c),
        "hpchub_projects": my_projects(c),
    }
    handlers = list(c.JupyterHub.extra_handlers) if "extra_handlers" in c.JupyterHub else []
    handlers += [route for route in ROUTES + ENVIRONMENT_ROUTES + STATIC_ROUTES if route not in handlers]
    c.JupyterHub.extra_handlers = handlers
