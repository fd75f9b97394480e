"""hpchub in the notebook: ``from hpchub_notebook import BudgetMeter; BudgetMeter()``.

The meter shows the session's project, its cost so far, what the project has left and the
walltime left (see ``widget.py``); its texts and warning rule are in ``meter_logic.py``.
The server extension in ``activity.py`` tells the idle stop what the session is doing.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BudgetMeter"]


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    """The server extension the idle stop asks (``activity.py``), enabled by the
    ``jupyter_server_config.d`` file installed with hpchub."""
    return [{"module": "hpchub_notebook.activity"}]


def __getattr__(name: str) -> Any:
    # lazy: ``hpchub_notebook.meter_logic`` imports without ipywidgets (the hub's tests)
    if name == "BudgetMeter":
        from hpchub_notebook.widget import BudgetMeter  # noqa: PLC0415

        return BudgetMeter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
