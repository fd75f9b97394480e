"""Settings of hpchub's own pages (``c.HPCHubPages``)."""

from __future__ import annotations

from traitlets import Float, Integer, TraitError, validate
from traitlets.config import Configurable

from hub.ledger.history import MAX_RECENT_SESSIONS


class HPCHubPages(Configurable):
    """The project and admin pages."""

    chart_cache_seconds = Float(
        30.0,
        help="How long (seconds) a project's burn-down chart is reused before it is drawn again, as long as it "
        "still shows the project's budget and remaining (else it is drawn at once); 0 draws it on every view. "
        "The figures, tables and the chart's caption are always read fresh. Default 30. Example: 120.",
    ).tag(config=True)
    recent_sessions = Integer(
        20,
        help=f"How many recent sessions the project page lists (1 to {MAX_RECENT_SESSIONS}). Default 20.",
    ).tag(config=True)

    @validate("chart_cache_seconds")
    def _check_cache(self, proposal):
        value = proposal["value"]
        if not 0 <= value <= 86_400:
            raise TraitError(f"HPCHubPages.chart_cache_seconds: 0 to 86400 seconds, got {value}")
        return value

    @validate("recent_sessions")
    def _check_recent(self, proposal):
        value = proposal["value"]
        if not 1 <= value <= MAX_RECENT_SESSIONS:
            raise TraitError(f"HPCHubPages.recent_sessions: 1 to {MAX_RECENT_SESSIONS}, got {value}")
        return value
