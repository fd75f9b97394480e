"""The burn-down chart as inline SVG, drawn server-side by matplotlib (its SVG backend).

``render_svg(data)`` draws a :class:`~hub.project_pages.burndown.BurnDown` with matplotlib's
object API (a ``Figure`` and its own SVG canvas: no pyplot, no display, no global figure
state). Matplotlib's settings are process-global, so one render runs at a time (a lock);
the hub reads the chart's data and draws it in a worker thread (``project_chart``) and keeps
each project's drawing for a short while (``ChartCache``), so a busy project page neither reads
every charge nor redraws on every view. A kept drawing is reused only while it still shows the
page's budget and remaining (a start, stop, extension, grant or final charge moves them: the
chart is drawn again); its words (the caption and the SVG's title) always state the page's own
figures, so a running session's used and held, which move every second while remaining stays,
are never older than the figures above the chart.

The SVG is made fit for inlining into a page: no XML prolog, no fixed size (it scales to
its container: readable at 390 px), ``role="img"`` with a ``<title>`` saying what it shows.
The budget line's group has the id ``hpchub-budget-line`` and the remaining line's
``hpchub-remaining-line``.
"""

from __future__ import annotations

import asyncio
import html
import io
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from hub.ledger.arithmetic import MGS_PER_GPU_HOUR
from hub.ledger.types import ProjectUsage
from hub.project_pages.burndown import BurnDown
from hub.project_pages.tables import chart_summary

BUDGET_LINE_ID = "hpchub-budget-line"
REMAINING_LINE_ID = "hpchub-remaining-line"
NOW_LINE_ID = "hpchub-now-line"
TITLE_ID = "hpchub-chart-title"
BUDGET_COLOUR = "#1f4e99"  # dark blue, dashed: told apart without colour too
REMAINING_COLOUR = "#b34700"  # dark orange, solid
_RENDER_LOCK = threading.Lock()
_ROOT_SIZE = re.compile(r'\s(width|height)="[^"]*"')


def _hours(mgs: int) -> float:
    return mgs / MGS_PER_GPU_HOUR  # for drawing only; the page's figures are exact


def _draw(data: BurnDown) -> str:
    """matplotlib's SVG text of the chart (call under ``_RENDER_LOCK``)."""
    import matplotlib  # noqa: PLC0415  (heavy: imported in the worker thread on first use)
    from matplotlib import dates as mdates  # noqa: PLC0415
    from matplotlib.backends.backend_svg import FigureCanvasSVG  # noqa: PLC0415
    from matplotlib.figure import Figure  # noqa: PLC0415

    times = [point.at for point in data.points]
    budget = [_hours(point.budget_mgs) for point in data.points]
    remaining = [_hours(point.remaining_mgs) for point in data.points]
    settings = {"svg.fonttype": "none", "svg.hashsalt": "hpchub", "font.size": 13,
                "font.family": ["DejaVu Sans", "sans-serif"]}  # fmt: skip
    with matplotlib.rc_context(settings):
        # one drawing for every width: small enough that its words stay legible at 390 px
        figure = Figure(figsize=(5.6, 3.4), dpi=72, layout="constrained")
        FigureCanvasSVG(figure)
        axes = figure.add_subplot()
        # the budget as it was, then as it is now up to the period's end
        (budget_line,) = axes.step(
            [*times, data.end], [*budget, _hours(data.budget_mgs)], where="post", color=BUDGET_COLOUR,
            linestyle="--", linewidth=2, label="Budget",
        )  # fmt: skip
        budget_line.set_gid(BUDGET_LINE_ID)
        (remaining_line,) = axes.step(
            times, remaining, where="post", color=REMAINING_COLOUR, linewidth=2.5, label="Remaining"
        )
        remaining_line.set_gid(REMAINING_LINE_ID)
        now_line = axes.axvline(data.now, color="#555555", linestyle=":", linewidth=1.5, label="Now")
        now_line.set_gid(NOW_LINE_ID)
        axes.set_xlim(data.start, data.end)
        low = min(0.0, *remaining)
        high = max(1e-9, *budget, _hours(data.budget_mgs))
        axes.set_ylim(low, high * 1.08)
        axes.set_ylabel("GPU-hours")
        locator = mdates.AutoDateLocator(maxticks=5)
        axes.xaxis.set_major_locator(locator)
        axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        axes.grid(True, color="#dddddd", linewidth=0.8)
        axes.spines[["top", "right"]].set_visible(False)
        axes.legend(loc="lower left", frameon=False, ncols=3, fontsize=11, handlelength=1.6, columnspacing=1.0)
        out = io.StringIO()
        figure.savefig(out, format="svg", metadata={"Date": None, "Creator": None})
    return out.getvalue()


def inline_svg(svg: str, title: str) -> str:
    """matplotlib's SVG document -> an element to inline: no prolog, no fixed size, a title."""
    svg = svg[svg.index("<svg") :]
    end = svg.index(">")
    root = _ROOT_SIZE.sub("", svg[:end])
    root += f' class="hpchub-chart-svg" role="img" aria-labelledby="{TITLE_ID}" focusable="false"'
    return f'{root}><title id="{TITLE_ID}">{html.escape(title)}</title>{svg[end + 1 :]}'


def draw_svg(data: BurnDown) -> str:
    """matplotlib's SVG document of the chart (blocking: call it in a worker thread)."""
    with _RENDER_LOCK:
        return _draw(data)


def render_svg(data: BurnDown) -> str:
    """The chart as an inline SVG element (blocking: call it in a worker thread)."""
    return inline_svg(draw_svg(data), chart_summary(data))


class ChartCache:
    """Each project's last chart for ``ttl_seconds`` (0: none kept), at most ``max_entries``."""

    def __init__(self, max_entries: int = 256, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[str, tuple[float, object]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str):
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] <= self.clock():
                self._entries.pop(key, None)
                return None
            self._entries.move_to_end(key)
            return entry[1]

    def put(self, key: str, value, ttl_seconds: float) -> None:
        if ttl_seconds <= 0:
            return
        with self._lock:
            self._entries[key] = (self.clock() + ttl_seconds, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)


CACHE = ChartCache()


@dataclass(frozen=True)
class Chart:
    svg: str  # the inline SVG element
    summary: str  # what it shows, in words (its caption)


@dataclass(frozen=True)
class Drawing:
    """What the cache keeps: matplotlib's SVG document and the data it was drawn from."""

    svg: str
    data: BurnDown


def draw(data: BurnDown) -> Chart:
    """Render ``data`` (blocking)."""
    return chart_of(Drawing(draw_svg(data), data))


def chart_of(drawing: Drawing, figures: ProjectUsage | None = None, now: datetime | None = None) -> Chart:
    """The drawing with its words; with ``figures`` (and ``now``), the words state those."""
    data = drawing.data
    if figures is not None:
        data = replace(data, now=now or data.now, budget_mgs=figures.grants_mgs, used_mgs=figures.used_mgs,
                       held_mgs=figures.held_mgs, remaining_mgs=figures.remaining_mgs)  # fmt: skip
    summary = chart_summary(data)
    return Chart(inline_svg(drawing.svg, summary), summary)


def _read_and_draw(data: Callable[[], BurnDown]) -> Drawing:
    read = data()
    return Drawing(draw_svg(read), read)


def shows(drawing: Drawing, figures: ProjectUsage) -> bool:
    """Does the drawing still show these figures' budget and remaining (its last step)?"""
    return (drawing.data.budget_mgs, drawing.data.remaining_mgs) == (figures.grants_mgs, figures.remaining_mgs)


async def project_chart(
    project: str,
    data: Callable[[], BurnDown],
    ttl_seconds: float,
    cache: ChartCache = CACHE,
    figures: ProjectUsage | None = None,
    now: datetime | None = None,
) -> Chart:
    """The project's chart: the drawing from the cache if made less than ``ttl_seconds`` ago and
    (given the page's ``figures``) it still shows their budget and remaining, else its data read
    (``data()``) and drawn in a worker thread (the hub's event loop never waits for the ledger
    or matplotlib). Its words state ``figures`` at ``now`` when given."""
    drawing = cache.get(project)
    if drawing is None or (figures is not None and not shows(drawing, figures)):
        drawing = await asyncio.to_thread(_read_and_draw, data)
        cache.put(project, drawing, ttl_seconds)
    return chart_of(drawing, figures, now)
