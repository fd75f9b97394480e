"""Shared test configuration: tiers are pytest markers (unit, integration, browser)."""

import pathlib

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
ARTIFACTS = REPO_ROOT / "test-artifacts"
