"""What the session is doing, as it reports it to the idle stop (pure: no server, no subprocess, no clock).

The server extension (``activity.py``) posts :func:`activity_answer` to the hub's
``POST /hub/api/hpchub/v1/users/NAME/servers/SERVER/activity`` (:func:`report_url`) with the
server's own token, every :func:`report_interval` seconds and when a kernel starts a
request, and answers the same for the user at ``GET /user/NAME/SERVER/api/hpchub/activity``. *User activity* counts what a person or their code does, not an
open browser tab: a request handled by a kernel (a cell run, a completion, a widget moved),
a terminal's input or output, a file saved (JupyterLab autosaves an edited notebook every
2 minutes). JupyterLab's polls of an open tab (kernel and file lists) and the budget meter's
updates from its thread are not activity: they come without anyone there.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

NVIDIA_SMI_QUERY = ("--query-gpu=index,uuid,utilization.gpu", "--format=csv,noheader,nounits")
NVIDIA_SMI_TIMEOUT = 10.0  # seconds
REPORT_INTERVAL_VARIABLE = "HPCHUB_ACTIVITY_REPORT_SECONDS"  # set by the spawner (activity_report_seconds)
DEFAULT_REPORT_INTERVAL = 60  # seconds
MAX_REPORT_INTERVAL = 3600
EAGER_REPORT_GAP = 5.0  # seconds: a kernel's new request is reported at once, at most this often
REPORT_TIMEOUT = 20.0  # seconds for one report to reach the hub


def report_interval(text: str | None) -> int:
    """Seconds between reports from ``$HPCHUB_ACTIVITY_REPORT_SECONDS``: 0 (never) to 3600;
    unset, empty or anything else (it is the spawner's, never the user's to break): the default."""
    if text is None or not re.fullmatch(r"[0-9]{1,4}", text.strip()):
        return DEFAULT_REPORT_INTERVAL
    value = int(text.strip())
    return value if value <= MAX_REPORT_INTERVAL else DEFAULT_REPORT_INTERVAL


def report_url(api_url: str | None, user: str | None, server_name: str | None) -> str | None:
    """Where the session reports: the hub's API (``$JUPYTERHUB_API_URL``, ``.../hub/api``) for this
    user's (``$JUPYTERHUB_USER``) server (``$JUPYTERHUB_SERVER_NAME``, '' for the default); None
    outside a hub."""
    if not api_url or not user:
        return None
    server = quote(server_name or "", safe="")
    return f"{api_url.rstrip('/')}/hpchub/v1/users/{quote(user, safe='')}/servers/{server}/activity"


@dataclass(frozen=True)
class KernelActivity:
    busy: bool  # running a request now (a long cell with no output is still busy)
    last_request: datetime | None  # when it last started to handle one


@dataclass(frozen=True)
class TerminalActivity:
    running_command: bool  # a command runs in the foreground (not the shell waiting at its prompt)
    last_activity: datetime | None  # the last input or output


def visible_gpus(cuda_visible_devices: str | None) -> frozenset[str] | None:
    """The job's GPUs as ``$CUDA_VISIBLE_DEVICES`` names them (indices or UUIDs); None: all
    that nvidia-smi lists (unset: the job's cgroup shows only its own); empty: no GPU."""
    if cuda_visible_devices is None:
        return None
    names = [name.strip() for name in cuda_visible_devices.split(",")]
    if names in ([""], ["NoDevFiles"]) or any(name in ("", "-1") for name in names):
        return frozenset()
    return frozenset(names)


def gpu_utilization(nvidia_smi_output: str, visible: frozenset[str] | None) -> int | None:
    """The highest utilization (percent) of the job's GPUs from ``nvidia-smi`` with
    :data:`NVIDIA_SMI_QUERY` (``index, uuid, percent`` lines); None when none of them is listed
    or a figure is unreadable (``[N/A]``): unknown, never a guess."""
    figures = []
    for line in nvidia_smi_output.splitlines():
        if not line.strip():
            continue
        parts = [part.strip() for part in line.split(",")]
        if len(parts) != 3:
            return None
        index, uuid, percent = parts
        if visible is not None and index not in visible and uuid not in visible:
            continue
        if not percent.isdigit() or int(percent) > 100:
            return None
        figures.append(int(percent))
    return max(figures) if figures else None


def _latest(times: Iterable[datetime | None]) -> datetime | None:
    present = [moment for moment in times if moment is not None]
    return max(present) if present else None


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def activity_answer(
    *,
    started: datetime,
    kernels: Mapping[str, KernelActivity],
    terminals: Mapping[str, TerminalActivity],
    last_save: datetime | None,
    gpu_percent: int | None,
) -> dict[str, Any]:
    """The extension's JSON answer. ``last_activity``: the latest user activity (the server's
    start if none); times are ISO 8601 with their zone (UTC)."""
    last = _latest([started, last_save, *(k.last_request for k in kernels.values()),
                    *(t.last_activity for t in terminals.values())])  # fmt: skip
    return {
        "kernels": len(kernels),
        "kernels_busy": sum(1 for kernel in kernels.values() if kernel.busy),
        "terminals": len(terminals),
        "terminals_busy": sum(1 for terminal in terminals.values() if terminal.running_command),
        "last_activity": _iso(last),
        "last_save": _iso(last_save),
        "gpu_utilization_percent": gpu_percent,
    }
