"""``BudgetMeter``: an ipywidgets box with the session's figures, refreshed from a thread.

A daemon thread in the kernel fetches ``GET .../session`` every ``refresh_seconds`` (30 s)
with the server's own token (``$JUPYTERHUB_API_TOKEN``) and counts the walltime down every
second in between; widget updates sent from a thread reach the browser even while a long
cell runs. A failed fetch keeps the last figures, says so, and retries; ``stop()`` (or
``close()``) ends the thread.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from html import escape
from typing import Any

import ipywidgets as widgets

from hpchub_notebook import meter_logic as logic

RETRY_SECONDS = 10.0  # after a failed fetch, retry sooner than the refresh interval
FETCH_TIMEOUT = 10.0
NORMAL_BORDER = "1px solid #9aa5b1"
WARNING_BORDER = "2px solid #c0392b"


class MeterConfigError(RuntimeError):
    """Not in a JupyterHub single-user server (an environment variable is missing)."""


class FetchError(RuntimeError):
    def __init__(self, status: int | None, message: str = "") -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


def hub_fetcher(environ: Mapping[str, str] | None = None) -> Callable[[], dict]:
    """A function that GETs this server's session with the server's own token."""
    env = os.environ if environ is None else environ
    missing = [name for name in ("JUPYTERHUB_API_URL", "JUPYTERHUB_API_TOKEN", "JUPYTERHUB_USER") if not env.get(name)]
    if missing:
        raise MeterConfigError(f"not in a JupyterHub notebook server: {', '.join(missing)} not set")
    url = logic.session_url(env["JUPYTERHUB_API_URL"], env["JUPYTERHUB_USER"], env.get("JUPYTERHUB_SERVER_NAME", ""))
    headers = {"Authorization": f"token {env['JUPYTERHUB_API_TOKEN']}", "Accept": "application/json"}

    def fetch() -> dict:
        request = urllib.request.Request(url, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT) as response:  # noqa: S310 (the hub's URL)
                return json.loads(response.read().decode())
        except urllib.error.HTTPError as exc:
            raise FetchError(exc.code, exc.reason) from None

    return fetch


def _cell(label: str, value: str, warn: bool = False) -> str:
    colour = "#c0392b" if warn else "inherit"
    return (
        f'<div style="line-height:1.3"><div style="font-size:85%;opacity:.75">{escape(label)}</div>'
        f'<div style="font-weight:600;color:{colour}">{escape(value)}</div></div>'
    )


class BudgetMeter(widgets.VBox):
    """The session's project, cost so far, what the project has left, walltime left.

    ``BudgetMeter()`` as a cell's last line shows it; ``meter.figures`` are the current
    figures (a dict); ``meter.stop()`` ends the refresh thread. ``fetch`` (tests) replaces
    the portal call: a function returning the session endpoint's JSON.
    """

    def __init__(
        self,
        refresh_seconds: float = 30,
        *,
        tick_seconds: float = 1.0,
        fetch: Callable[[], Mapping[str, Any]] | None = None,
        environ: Mapping[str, str] | None = None,
        start: bool = True,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        if refresh_seconds <= 0 or tick_seconds <= 0:
            raise ValueError("refresh_seconds and tick_seconds must be > 0")
        self.refresh_seconds = float(refresh_seconds)
        self.tick_seconds = float(min(tick_seconds, refresh_seconds))
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._figures: logic.Figures | None = None
        self._deadline: float | None = None
        self._error: str | None = None
        self._refreshes = 0
        self._failures = 0
        self._project = widgets.HTML()
        self._cost = widgets.HTML()
        self._left = widgets.HTML()
        self._time = widgets.HTML()
        self._status = widgets.HTML()
        row = widgets.HBox(
            [self._project, self._cost, self._left, self._time],
            layout=widgets.Layout(justify_content="space-between", grid_gap="1.5em"),
        )
        self.children = [row, self._status]
        self.layout = widgets.Layout(border=NORMAL_BORDER, padding="4px 10px", max_width="760px")
        try:
            self._fetch = fetch if fetch is not None else hub_fetcher(environ)
        except MeterConfigError as exc:
            self._fetch = None
            self._error = str(exc)
        self._render()
        if start and self._fetch is not None:
            self.start()

    # --- the thread -------------------------------------------------------------------------

    def start(self) -> None:
        """Start (or restart) the refresh thread; a daemon, so it never keeps the kernel alive."""
        if self._fetch is None or (self._thread is not None and self._thread.is_alive()):
            return
        self._stop_event.clear()
        self._thread = threading.Thread(target=self._run, name="hpchub-budget-meter", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 5.0) -> None:
        """End the refresh thread (the widget keeps the last figures)."""
        self._stop_event.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def close(self) -> None:
        self.stop()
        super().close()

    def _run(self) -> None:
        next_fetch = self._monotonic()
        while not self._stop_event.is_set():
            if self._monotonic() >= next_fetch:
                ok = self.refresh()
                wait = self.refresh_seconds if ok else min(self.refresh_seconds, RETRY_SECONDS)
                next_fetch = self._monotonic() + wait
            else:
                self._safe_render()
            self._stop_event.wait(max(0.0, min(self.tick_seconds, next_fetch - self._monotonic())))

    def refresh(self) -> bool:
        """Fetch the figures once (the thread calls this); never raises. True: fetched."""
        try:
            answer = self._fetch() if self._fetch is not None else None
            if answer is None:
                return False
            figures = logic.figures_from_session(answer)
        except FetchError as exc:
            self._failed(logic.error_text(exc.status, exc.message))
            return False
        except Exception:  # noqa: BLE001 (any failure: keep the last figures and retry)
            self._failed(logic.UNREACHABLE)
            return False
        with self._lock:
            self._figures = figures
            self._deadline = logic.deadline(figures.seconds_left, self._monotonic())
            self._error = None
            self._refreshes += 1
        self._safe_render()
        return True

    def _failed(self, text: str) -> None:
        with self._lock:
            self._error = text
            self._failures += 1
        self._safe_render()

    # --- what it shows ----------------------------------------------------------------------

    @property
    def figures(self) -> dict[str, Any]:
        """The figures as shown now: the last answer's, with the walltime counted down locally."""
        with self._lock:
            figures, deadline, error = self._figures, self._deadline, self._error
            refreshes, failures = self._refreshes, self._failures
        shown: dict[str, Any] = figures.as_dict() if figures is not None else {}
        seconds = logic.seconds_until(deadline, self._monotonic())
        if figures is not None:
            shown["seconds_left"] = seconds
            shown["time_left"] = logic.format_time_left(seconds, figures.state)
            reasons = logic.warnings(seconds, figures.project_remaining_gpu_hours, figures.project_budget_gpu_hours)
            if figures.idle_notice:
                reasons.append(figures.idle_notice)
            shown["warning"] = bool(reasons)
            shown["warnings"] = reasons
        shown.update(error=error, refreshes=refreshes, failures=failures)
        return shown

    def _safe_render(self) -> None:
        try:
            self._render()
        except Exception:  # noqa: BLE001 (a closed widget or comm: the thread stays alive)
            pass

    def _render(self) -> None:
        shown = self.figures
        if "project" not in shown:
            self._project.value = _cell("Project", "-")
            self._cost.value = _cell("This session", "-")
            self._left.value = _cell("Project left", "-")
            self._time.value = _cell("Walltime left", "-")
            self._status.value = self._status_html(shown.get("error") or "reading the portal...", warn=False)
            self.layout.border = NORMAL_BORDER
            return
        warn = shown["warning"]
        job = f" (job {shown['job_id']})" if shown.get("job_id") else ""
        self._project.value = _cell("Project", f"{shown['project']}{job}")
        self._cost.value = _cell("This session", logic.format_gpu_hours(shown["cost_so_far_gpu_hours"]))
        remaining = shown["project_remaining_gpu_hours"]
        low_budget = any("budget" in reason for reason in shown["warnings"])
        self._left.value = _cell("Project left", logic.format_gpu_hours(remaining), warn=low_budget)
        low_time = any("walltime" in reason for reason in shown["warnings"])
        self._time.value = _cell("Walltime left", shown["time_left"], warn=low_time)
        if shown.get("error"):
            status = self._status_html(shown["error"], warn=True)
        elif warn:
            status = self._status_html(logic.warning_line(shown["warnings"]), warn=True)
        else:
            status = ""
        self._status.value = status
        self.layout.border = WARNING_BORDER if warn else NORMAL_BORDER

    @staticmethod
    def _status_html(text: str, warn: bool) -> str:
        colour = "#c0392b" if warn else "#52606d"
        return f'<div style="font-size:85%;color:{colour}">{escape(text)}</div>'
