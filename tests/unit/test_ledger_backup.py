"""``hpchub ledger export`` / ``import`` (hub/ledger/backup.py): a round trip keeps every figure to
the milli-GPU-second; a bad dump or a non-empty target changes nothing. The target is
``ledger_url`` (SQLite here, PostgreSQL in tests/integration), the source always SQLite."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone

import pytest

from hub.ledger import Ledger, LedgerInputError, upgrade
from hub.ledger.backup import export_ledger, import_ledger
from hub.ledger.courses import make_rules, parse_roster_csv
from hub.ledger.types import Booking

pytestmark = pytest.mark.unit

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def source(tmp_path) -> Ledger:
    url = f"sqlite:///{tmp_path / 'source.sqlite'}"
    upgrade(url)
    with Ledger(url, clock=lambda: T0 + timedelta(hours=3)) as ledger:
        ledger.create_project("vision-lab", account="vision-lab", kind="research", gpu_hours=100, who="admin", now=T0)
        ledger.add_member("vision-lab", "alice", role="pi", who="admin", now=T0)
        ledger.add_member("vision-lab", "bob", role="member", cap_gpu_hours="20.5", who="admin", now=T0)
        ledger.grant("vision-lab", "-3.3333", reason="correction", who="admin", now=T0)
        ledger.create_course("cs101", account="cs101", start="2026-01-01", end="2026-06-30", gpu_hours=50,
                             rules=make_rules(per_student=5, gpu_types="a100", max_gpus=1), who="admin", now=T0)  # fmt: skip
        ledger.add_member("cs101", "carol", role="student", who="admin", now=T0)
        ledger.import_roster("cs101", parse_roster_csv("ann@uni.example\n")[0], who="dave", now=T0)
        ended = ledger.admit("vision-lab", "bob", "", Booking("h200", 2, 1), now=T0)
        ledger.record_job_id(ended, "101")
        ledger.session_started(ended, T0)
        ledger.session_ended(ended, T0 + timedelta(minutes=37), 37 * 60 + 11)
        ledger.import_final_charge("hpchub", "101", "bob", "vision-lab", {"h200": 2}, T0, T0 + timedelta(minutes=38),
                                   38 * 60 + 1, now=T0)  # fmt: skip
        running = ledger.admit("vision-lab", "alice", "gpu", Booking("a100", 3, "2.25"), now=T0)
        ledger.record_job_id(running, "102")
        ledger.session_started(running, T0 + timedelta(minutes=5))
        ledger.admit("cs101", "carol", "", Booking("a100", 1, 1), now=T0)  # admitted, pending
        yield ledger


def _figures(ledger: Ledger) -> dict:
    now = T0 + timedelta(hours=1)
    return {p.name: (ledger.usage(p.name, now=now), ledger.charges(p.name)) for p in ledger.projects()}


def test_a_round_trip_keeps_every_figure_and_row(source: Ledger, ledger_url: str) -> None:
    dump = json.loads(json.dumps(export_ledger(source)))  # through JSON text, as the file holds it
    upgrade(ledger_url)
    with Ledger(ledger_url, clock=source.clock) as target:
        counts = import_ledger(target, dump)
        assert counts["hpchub_charges"] == 2 and counts["hpchub_sessions"] == 3 and counts["hpchub_roster"] == 1
        assert _figures(target) == _figures(source)
        again = export_ledger(target)
        assert again["tables"] == dump["tables"] and again["schema"] == dump["schema"]
        # new rows after an import get fresh ids (PostgreSQL's sequences moved past the imported ones)
        target.add_member("vision-lab", "erin", role="member", who="admin", now=T0)
        target.admit("vision-lab", "erin", "", Booking("h200", 1, 1), now=T0)


@pytest.mark.parametrize(
    ("tamper", "says"),
    [
        pytest.param(lambda d: d.update(format="other"), "not an hpchub ledger export", id="format"),
        pytest.param(lambda d: d.update(schema="0001"), "exported at schema '0001'", id="old-schema"),
        pytest.param(lambda d: d["tables"].update(hpchub_extra=[]), "unknown tables hpchub_extra", id="unknown-table"),
        pytest.param(lambda d: d["tables"]["hpchub_charges"][1].pop("weighted_mgs"), "hpchub_charges row 2", id="missing-column"),
        pytest.param(lambda d: d["tables"]["hpchub_members"][0].update(role="boss"), "hpchub_members row 1 role", id="bad-enum"),
        pytest.param(lambda d: d["tables"]["hpchub_grants"][0].update(granted_at="2026-03-02T09:00:00"),
                     "no time zone", id="naive-time"),
    ],
)  # fmt: skip
def test_a_bad_dump_imports_nothing(source: Ledger, ledger_url: str, tamper, says: str) -> None:
    dump = copy.deepcopy(export_ledger(source))
    tamper(dump)
    upgrade(ledger_url)
    with Ledger(ledger_url) as target:
        with pytest.raises(LedgerInputError) as caught:
            import_ledger(target, dump)
        assert says in str(caught.value)
        assert target.projects() == []


def test_only_into_an_empty_ledger(source: Ledger, ledger_url: str) -> None:
    dump = export_ledger(source)
    upgrade(ledger_url)
    with Ledger(ledger_url) as target:
        target.create_project("other", account="other", kind="lab", gpu_hours=1, who="admin", now=T0)
        with pytest.raises(LedgerInputError) as caught:
            import_ledger(target, dump)
        assert caught.value.field == "database" and [p.name for p in target.projects()] == ["other"]
