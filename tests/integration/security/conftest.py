"""The attack suite: each test performs an attack as a hostile user would (with that user's
own files, tokens and sessions) against the test cluster and hub, and asserts that it fails.
Every test here carries the ``security`` and ``integration`` markers (``pytest -m security``)."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.security)
            item.add_marker(pytest.mark.integration)
