"""The demo cluster's accounting database password (pure rendering and the settings file): never
in the world-readable cluster.json, one per install, only in root's 0600 files."""

from __future__ import annotations

import json
import os
import stat

import pytest

from hub.demo.cluster.config import ClusterSettings, render_slurmdbd_conf
from hub.demo.cluster.manager import Cluster

pytestmark = pytest.mark.unit


def test_the_settings_file_holds_no_password_and_old_ones_are_dropped(tmp_path):
    settings = ClusterSettings(state_dir=str(tmp_path))
    assert "password" not in settings.to_json().lower()
    old = json.loads(settings.to_json())
    old["db_password"] = "hpchub-demo-only"  # cluster.json of an earlier version
    assert ClusterSettings.from_json(json.dumps(old)) == settings


def test_slurmdbd_conf_takes_the_installs_password(tmp_path):
    text = render_slurmdbd_conf(ClusterSettings(state_dir=str(tmp_path)), db_password="s3cret-per-install")
    assert "StoragePass=s3cret-per-install" in text.splitlines()


def test_the_password_is_generated_once_in_a_0600_file(tmp_path):
    cluster = Cluster(ClusterSettings(state_dir=str(tmp_path)), say=lambda _line: None)
    first = cluster.db_password()
    assert len(first) >= 40 and first != "hpchub-demo-only"
    assert cluster.db_password() == first
    assert stat.S_IMODE(os.stat(cluster.settings.db_password_file).st_mode) == 0o600
    other = Cluster(ClusterSettings(state_dir=str(tmp_path / "other")), say=lambda _line: None)
    (tmp_path / "other").mkdir()
    assert other.db_password() != first
