"""``_TTLCache``: a tiny shared cache with an expiry per entry, for the spawner's shared
caches (``spawner._CACHE``) and the form's retry (``form_hooks._FORM_RETRY``). Its own
module so that both can import it.
"""

from __future__ import annotations

import time


class _TTLCache:
    """A tiny shared cache: key -> (expiry, value)."""

    def __init__(self) -> None:
        self._entries: dict[object, tuple[float, object]] = {}

    def get(self, key: object) -> object | None:
        entry = self._entries.get(key)
        if entry and entry[0] > time.monotonic():
            return entry[1]
        return None

    def put(self, key: object, value: object, ttl: float) -> None:
        self._entries[key] = (time.monotonic() + ttl, value)

    def pop(self, key: object) -> object | None:
        value = self.get(key)
        self._entries.pop(key, None)
        return value
