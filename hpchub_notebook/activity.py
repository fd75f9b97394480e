"""The Jupyter server extension that reports the session's activity to the idle stop.

Enabled wherever hpchub is installed (``etc/jupyter/jupyter_server_config.d/hpchub_notebook.json``
in the environment's prefix), so every session started from it reports. The report (see
``activity_logic.py``) says how many kernels run a request now, how many terminals run a
command, the latest user activity and the job's GPU utilization (``nvidia-smi``; null where
there is none, as on emulated GPUs).

It is *pushed*: :class:`Reporter` posts it to the hub with the server's own token
(``$JUPYTERHUB_API_TOKEN``, which may report for this server only), every
``$HPCHUB_ACTIVITY_REPORT_SECONDS`` and at once when a kernel starts a request. Nothing is
ever asked of the session from outside: a user controls their own server, so no credential
but their own may ever be sent to it. ``GET .../api/hpchub/activity`` answers the same for
the user (their own token or cookie); being asked is not activity (the handler does not
touch the server's own ``last_activity``).

What the server tracks for it: each kernel's latest request (a ``status: busy`` on its IOPub
channel in answer to a frontend's request; output from a kernel's own threads, such as the
budget meter's updates, is not a request), and the latest file save (a pre-save hook).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from datetime import datetime, timezone
from typing import Any

from jupyter_client.session import Session
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.ioloop import IOLoop, PeriodicCallback

from hpchub_notebook import activity_logic as logic

ROUTE = "/api/hpchub/activity"


def _now() -> datetime:
    return datetime.now(timezone.utc)


class ActivityState:
    """Each kernel's latest request and the latest save, kept by the running server."""

    def __init__(self, serverapp) -> None:
        self.serverapp = serverapp
        self.kernel_requests: dict[str, datetime] = {}
        self.last_save: datetime | None = None
        self._streams: dict[str, Any] = {}
        self.on_request = lambda: None  # the reporter's nudge: a kernel started a request

    # --- kernels ------------------------------------------------------------------------------
    def watch(self, kernel_id: str) -> None:
        manager = self.serverapp.kernel_manager
        self.unwatch(kernel_id)
        try:
            kernel = manager.get_kernel(kernel_id)
            stream = kernel.connect_iopub()
        except Exception as exc:  # noqa: BLE001 (a kernel that went away: nothing to watch)
            self.serverapp.log.debug("hpchub activity: cannot watch kernel %s: %s", kernel_id, exc)
            return
        session = Session(config=kernel.session.config, key=kernel.session.key)

        def record(msg_list) -> None:
            try:
                _idents, fed = session.feed_identities(msg_list)
                message = session.deserialize(fed, content=False)
                if message["header"]["msg_type"] != "status":
                    return
                parent = (message.get("parent_header") or {}).get("msg_type")
                if parent and manager.track_message_type(parent):
                    self.kernel_requests[kernel_id] = _now()
                    self.on_request()
            except Exception:  # noqa: BLE001 (a malformed message never breaks the server)
                return

        stream.on_recv(record)
        self._streams[kernel_id] = stream

    def unwatch(self, kernel_id: str) -> None:
        stream = self._streams.pop(kernel_id, None)
        if stream is not None:
            try:
                stream.close()
            except Exception:  # noqa: BLE001
                pass

    def kernels(self) -> dict[str, logic.KernelActivity]:
        manager = self.serverapp.kernel_manager
        answer = {}
        for kernel_id in list(manager.list_kernel_ids()):
            if kernel_id not in self._streams:
                self.watch(kernel_id)
            try:
                kernel = manager.get_kernel(kernel_id)
            except KeyError:
                continue
            busy = getattr(kernel, "execution_state", None) == "busy"
            answer[kernel_id] = logic.KernelActivity(busy=busy, last_request=self.kernel_requests.get(kernel_id))
        for gone in set(self._streams) - set(answer):
            self.unwatch(gone)
            self.kernel_requests.pop(gone, None)
        return answer

    # --- terminals ----------------------------------------------------------------------------
    def terminals(self) -> dict[str, logic.TerminalActivity]:
        manager = self.serverapp.web_app.settings.get("terminal_manager")
        answer = {}
        for name, terminal in dict(getattr(manager, "terminals", None) or {}).items():
            process = getattr(terminal, "ptyproc", None)
            try:
                running = os.tcgetpgrp(process.fd) != process.pid
            except (AttributeError, OSError):  # closed: nothing runs there
                running = False
            last = getattr(terminal, "last_activity", None)
            if last is not None and last.tzinfo is None:
                last = last.replace(tzinfo=timezone.utc)
            answer[name] = logic.TerminalActivity(running_command=running, last_activity=last)
        return answer

    # --- saves --------------------------------------------------------------------------------
    def saved(self, **_kwargs) -> None:
        self.last_save = _now()

    def started(self) -> datetime:
        started = self.serverapp.web_app.settings.get("started") or _now()
        return started if started.tzinfo else started.replace(tzinfo=timezone.utc)

    async def answer(self) -> dict[str, Any]:
        """The report (and the GET answer): what the session does now."""
        return logic.activity_answer(
            started=self.started(), kernels=self.kernels(), terminals=self.terminals(),
            last_save=self.last_save, gpu_percent=await gpu_percent(),
        )  # fmt: skip


async def gpu_percent(environ=os.environ) -> int | None:
    """The job's GPUs' highest utilization now; None without nvidia-smi or an answer in time."""
    nvidia_smi = shutil.which("nvidia-smi")
    visible = logic.visible_gpus(environ.get("CUDA_VISIBLE_DEVICES"))
    if nvidia_smi is None or visible == frozenset():
        return None
    try:
        process = await asyncio.create_subprocess_exec(
            nvidia_smi, *logic.NVIDIA_SMI_QUERY, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
        )
    except OSError:
        return None
    try:
        out, _ = await asyncio.wait_for(process.communicate(), logic.NVIDIA_SMI_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        return None
    if process.returncode != 0:
        return None
    return logic.gpu_utilization(out.decode(errors="replace"), visible)


class ActivityHandler(APIHandler):
    """``GET`` the session's activity (authenticated: the server's user, or a token with access to it)."""

    _track_activity = False  # being asked is not activity
    auth_resource = "status"

    @web.authenticated
    @authorized
    async def get(self) -> None:
        state: ActivityState = self.settings["hpchub_activity"]
        self.finish(await state.answer())


class Reporter:
    """Posts the session's activity to the hub with the server's own token: every ``interval``
    seconds, and soon after a kernel starts a request (at most every EAGER_REPORT_GAP s), so
    that the idle stop's last look before a stop sees a cell just started. A report that
    fails is logged (once until one succeeds again) and the next one tries again: a session
    that cannot report is never stopped as idle (its last report ages out)."""

    def __init__(self, serverapp, state: ActivityState, environ=os.environ) -> None:
        self.log = serverapp.log
        self.state = state
        self.url = logic.report_url(environ.get("JUPYTERHUB_API_URL"), environ.get("JUPYTERHUB_USER"),
                                    environ.get("JUPYTERHUB_SERVER_NAME"))  # fmt: skip
        self.token = environ.get("JUPYTERHUB_API_TOKEN") or ""
        self.interval = logic.report_interval(environ.get(logic.REPORT_INTERVAL_VARIABLE))
        self._last_sent = 0.0
        self._scheduled = False
        self._failing = False

    @property
    def enabled(self) -> bool:
        return bool(self.url and self.token and self.interval)

    def start(self) -> None:
        if not self.enabled:
            self.log.info("hpchub: no activity reports (not under a hub, or %s=0)", logic.REPORT_INTERVAL_VARIABLE)
            return
        PeriodicCallback(self.report, self.interval * 1000, jitter=0.1).start()
        IOLoop.current().call_later(1.0, self.report)  # the first report right after the start
        self.log.info("hpchub: the session reports its activity to the hub every %d s", self.interval)

    def nudge(self) -> None:
        """A kernel started a request: report it soon (not more often than EAGER_REPORT_GAP)."""
        if not self.enabled or self._scheduled:
            return
        self._scheduled = True
        delay = max(0.0, self._last_sent + logic.EAGER_REPORT_GAP - time.monotonic())
        IOLoop.current().call_later(delay, self._eager)

    async def _eager(self) -> None:
        self._scheduled = False
        await self.report()

    async def report(self) -> None:
        self._last_sent = time.monotonic()
        try:
            body = json.dumps(await self.state.answer())
            request = HTTPRequest(self.url, method="POST", body=body, request_timeout=logic.REPORT_TIMEOUT,
                                  headers={"Authorization": f"token {self.token}",
                                           "Content-Type": "application/json"})  # fmt: skip
            await AsyncHTTPClient().fetch(request)
        except (HTTPClientError, OSError, TimeoutError) as exc:
            if not self._failing:
                code = getattr(exc, "code", None)
                self.log.warning(
                    "hpchub: the activity report did not reach the hub (%s); the idle stop leaves "
                    "this session alone until one does",
                    f"HTTP {code}" if code else type(exc).__name__,
                )
            self._failing = True
            return
        except Exception as exc:  # noqa: BLE001 (a report never breaks the server)
            self.log.warning("hpchub: the activity report failed: %s", type(exc).__name__)
            self._failing = True
            return
        if self._failing:
            self.log.info("hpchub: activity reports reach the hub again")
        self._failing = False


def _load_jupyter_server_extension(serverapp) -> None:
    state = ActivityState(serverapp)
    manager = serverapp.kernel_manager
    start_watching, stop_watching = manager.start_watching_activity, manager.stop_watching_activity

    def start_watching_activity(kernel_id):  # a new or restarted kernel: watch it from its start
        start_watching(kernel_id)
        state.watch(kernel_id)

    def stop_watching_activity(kernel_id):
        state.unwatch(kernel_id)
        stop_watching(kernel_id)

    manager.start_watching_activity = start_watching_activity
    manager.stop_watching_activity = stop_watching_activity
    serverapp.contents_manager.register_pre_save_hook(state.saved)
    web_app = serverapp.web_app
    web_app.settings["hpchub_activity"] = state
    base_url = web_app.settings.get("base_url", "/")
    web_app.add_handlers(".*$", [(base_url.rstrip("/") + ROUTE, ActivityHandler)])
    reporter = Reporter(serverapp, state)
    state.on_request = reporter.nudge
    reporter.start()
