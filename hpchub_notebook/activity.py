"""The Jupyter server extension the idle stop asks: ``GET .../api/hpchub/activity``.

Enabled wherever hpchub is installed (``etc/jupyter/jupyter_server_config.d/hpchub_notebook.json``
in the environment's prefix), so every session started from it answers. The answer (see
``activity_logic.py``) says how many kernels run a request now, how many terminals run a
command, the latest user activity and the job's GPU utilization (``nvidia-smi``; null where
there is none, as on emulated GPUs). Asking is not activity: the handler does not touch the
server's own ``last_activity``.

What the server tracks for it: each kernel's latest request (a ``status: busy`` on its IOPub
channel in answer to a frontend's request; output from a kernel's own threads, such as the
budget meter's updates, is not a request), and the latest file save (a pre-save hook).
"""

from __future__ import annotations

import asyncio
import os
import shutil
from datetime import datetime, timezone
from typing import Any

from jupyter_client.session import Session
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from tornado import web

from . import activity_logic as logic

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
        answer = logic.activity_answer(
            started=state.started(), kernels=state.kernels(), terminals=state.terminals(),
            last_save=state.last_save, gpu_percent=await gpu_percent(),
        )  # fmt: skip
        self.finish(answer)


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
    serverapp.log.info("hpchub: the session's activity answers at %s", base_url.rstrip("/") + ROUTE)
