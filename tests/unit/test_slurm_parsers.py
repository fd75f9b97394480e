"""The Slurm layer's parsers on literal Slurm output: what the cluster is made of
(spawners/slurm/cluster_parsers.py) and the jobs and associations the reconciler reads
(spawners/slurm/parsers.py)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from spawners.slurm.cluster_parsers import (
    SINFO_FORMAT,
    parse_gres_gpus,
    parse_partition_billing,
    parse_show_config,
    parse_sinfo,
    parse_slurm_time_minutes,
)
from spawners.slurm.parsers import (
    SACCTMGR_ASSOCIATION_FORMAT,
    SQUEUE_ACTIVE_FORMAT,
    parse_active_jobs,
    parse_associations,
    parse_user_accounts,
)
from spawners.slurm.types import ActiveJob, PartitionInfo, SlurmAssociation

pytestmark = pytest.mark.unit

UTC = timezone.utc

# The demo cluster, as `sinfo --noheader --format=%P|%l|%G|%N` prints it.
DEMO_SINFO = """\
gpu*|8:00:00|gpu:h200:4|gpu[01-02]
gpu*|8:00:00|gpu:a100:4|gpu03
debug|30:00|gpu:a100:4|gpu03
cpu|4:00:00|(null)|cpu01
"""


def test_the_formats_are_the_ones_the_parsers_read() -> None:
    assert SINFO_FORMAT == "%P|%l|%G|%N"
    assert SQUEUE_ACTIVE_FORMAT == "%i|%a|%u|%T|%V|%k"  # the comment last: it may hold "|"
    assert SACCTMGR_ASSOCIATION_FORMAT == "Cluster,Account,User,Partition,MaxSubmitJobs"


# --- sinfo ------------------------------------------------------------------------------------------


def test_parse_sinfo_demo_cluster() -> None:
    cluster = parse_sinfo(DEMO_SINFO)
    assert cluster.partitions == {
        "gpu": PartitionInfo("gpu", True, 480, {"h200": 4, "a100": 4}, ("gpu[01-02]", "gpu03")),
        "debug": PartitionInfo("debug", False, 30, {"a100": 4}, ("gpu03",)),
        "cpu": PartitionInfo("cpu", False, 240, {}, ("cpu01",)),
    }
    assert cluster.default_partition is not None and cluster.default_partition.name == "gpu"


def test_parse_sinfo_merges_lines_and_splits_hostlists() -> None:
    cluster = parse_sinfo(
        "big|infinite|gpu:h200:4(S:0-1),shard:8|n[01-03,05],n07\n"
        "\n"
        "big|infinite|gpu:h200:8(S:0,1)|n09\n"
        "old|1-00:00:00|gpu:2|o1\n"
    )
    big = cluster.partitions["big"]
    assert big.max_minutes is None and big.gpus_per_node == {"h200": 8}
    assert big.nodes == ("n[01-03,05]", "n07", "n09")
    assert cluster.partitions["old"].gpus_per_node == {}  # untyped GPUs are skipped
    assert cluster.partitions["old"].max_minutes == 1440
    assert cluster.default_partition is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("gpu*|8:00:00|gpu:h200:4\n", "sinfo line 1: expected 4 fields", id="three-fields"),
        pytest.param("*|8:00:00|gpu:h200:4|gpu01\n", "empty partition name", id="no-name"),
        pytest.param("gpu|8h|gpu:h200:4|gpu01\n", "not a Slurm time limit", id="bad-time"),
    ],
)
def test_parse_sinfo_rejects_malformed_lines(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_sinfo(text)


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        pytest.param("8:00:00", 480, id="hours"),
        pytest.param("30:00", 30, id="minutes-seconds"),
        pytest.param("30", 30, id="minutes"),
        pytest.param("1-00:00:00", 1440, id="one-day"),
        pytest.param("2-03", 2 * 1440 + 180, id="days-hours"),
        pytest.param("2-03:30", 2 * 1440 + 210, id="days-hours-minutes"),
        pytest.param("4:00:00", 240, id="four-hours"),
        pytest.param("0:59:59", 59, id="seconds-dropped"),
        pytest.param("infinite", None, id="infinite"),
        pytest.param("UNLIMITED", None, id="unlimited"),
    ],
)
def test_parse_slurm_time_minutes(text: str, minutes: int | None) -> None:
    assert parse_slurm_time_minutes(text) == minutes


@pytest.mark.parametrize(
    "text", ["", "n/a", "1:2:3:4", "-5", "8h"], ids=["empty", "n/a", "four-parts", "negative", "unit"]
)
def test_parse_slurm_time_minutes_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_slurm_time_minutes(text)


@pytest.mark.parametrize(
    ("text", "gpus"),
    [
        pytest.param("gpu:a100:4,shard:8", {"a100": 4}, id="with-shards"),
        pytest.param("(null)", {}, id="none"),
        pytest.param("gpu:h200:2,gpu:a100:1(S:0)", {"h200": 2, "a100": 1}, id="two-types-socket"),
        pytest.param("gpu:h200:4(S:0-1),gpu:h200:2", {"h200": 4}, id="most-of-a-type"),
        pytest.param("gpu:4", {}, id="untyped"),
        pytest.param("gpu:h200:²", {}, id="not-a-count"),
    ],
)
def test_parse_gres_gpus(text: str, gpus: dict[str, int]) -> None:
    assert parse_gres_gpus(text) == gpus


# --- sacctmgr -----------------------------------------------------------------------------------------


def test_parse_user_accounts() -> None:
    assert parse_user_accounts("vision-lab\n\ncs101\nvision-lab\n  \ntiny-lab\n") == ["vision-lab", "cs101", "tiny-lab"]
    assert parse_user_accounts("") == []


def test_parse_associations_literal_sacctmgr_output() -> None:
    text = "hpchub|vision-lab|||\nhpchub|vision-lab|alice||\nhpchub|vision-lab|bob||0\nhpchub|vision-lab|bob|gpu|7\n"
    assert parse_associations(text) == [
        SlurmAssociation("hpchub", "vision-lab", None, None, None),
        SlurmAssociation("hpchub", "vision-lab", "alice", None, None),
        SlurmAssociation("hpchub", "vision-lab", "bob", None, 0),
        SlurmAssociation("hpchub", "vision-lab", "bob", "gpu", 7),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("hpchub|vision-lab|alice\n", "3 fields, expected 5", id="too-few-fields"),
        pytest.param("sacctmgr: error: Problem talking to the database\n", "1 fields", id="error-text"),
        pytest.param("hpchub|vision-lab|alice||lots\n", "MaxSubmitJobs 'lots'", id="max-submit-word"),
        pytest.param("|vision-lab|alice||\n", "no cluster or account", id="no-cluster"),
    ],
)
def test_parse_associations_refuses_unreadable_lines(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_associations(text)


# --- squeue of the accounts' active jobs ---------------------------------------------------------------


def test_parse_active_jobs_literal_squeue_output() -> None:
    text = ("41|vision-lab|bob|RUNNING|2026-11-29T04:50:00|hpchub:user=bob,server=\n"
            "42|vision-lab|bob|PENDING|2026-11-29T04:59:30|hpchub:user=alice,server=x|y\n"
            "43|cs101|carol|RUNNING|2026-11-29T04:00:00|\n"
            "44|cs101|carol|PENDING|N/A|(null)\n"
            "45_1|cs101|carol|completing|2026-11-29T04:00:00|\n")  # fmt: skip
    jobs = parse_active_jobs(text)
    assert jobs[0] == ActiveJob("41", "vision-lab", "bob", "RUNNING", datetime(2026, 11, 29, 4, 50, tzinfo=UTC),
                                "hpchub:user=bob,server=")  # fmt: skip
    assert jobs[1].comment == "hpchub:user=alice,server=x|y" and jobs[1].tagged  # "|" in a comment: last field
    assert not jobs[2].tagged and jobs[3].submitted_at is None and not jobs[3].tagged
    assert (jobs[4].job_id, jobs[4].state) == ("45_1", "COMPLETING")
    assert {(job.account, job.user) for job in jobs} == {("vision-lab", "bob"), ("cs101", "carol")}


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("slurm_load_jobs error: Unable to contact slurm controller\n", id="error-text"),
        pytest.param("41|vision-lab||RUNNING|x|y\n", id="no-user"),
        pytest.param("41||bob|RUNNING|2026-11-29T04:50:00|\n", id="no-account"),
        pytest.param("41|vision-lab|bob|RUNNING|yesterday|hpchub:\n", id="bad-submit-time"),
        pytest.param("41|vision-lab|bob|RUNNING\n", id="four-fields"),
    ],
)
def test_parse_active_jobs_refuses_a_garbled_answer(text: str) -> None:
    with pytest.raises(ValueError, match="squeue line 1"):
        parse_active_jobs(text)


# --- scontrol show (the doctor's reads) -----------------------------------------------------------------


def test_parse_show_config_reads_key_value_lines() -> None:
    text = ("Configuration data as of 2026-11-29T05:00:00\n"
            "AccountingStorageEnforce = associations,limits,safe\n"
            "AccountingStorageTRES   = cpu,mem,gres/gpu,gres/gpu:h200\n"
            "AuthInfo                = socket=/run/munge/munge.socket.2\n"
            "Slurmctld(primary) at head is UP\n")  # fmt: skip
    config = parse_show_config(text)
    assert config["AccountingStorageEnforce"] == "associations,limits,safe"
    assert config["AuthInfo"] == "socket=/run/munge/munge.socket.2"
    assert "Configuration data as of 2026-11-29T05:00:00" not in config


def test_parse_partition_billing_reads_each_partitions_weights() -> None:
    text = ("PartitionName=gpu AllowGroups=ALL Default=YES TRESBillingWeights=CPU=0,GRES/gpu:h200=4,GRES/gpu:a100=2\n"
            "PartitionName=cpu AllowGroups=ALL Default=NO\n")  # fmt: skip
    assert parse_partition_billing(text) == {"gpu": {"cpu": "0", "gres/gpu:h200": "4", "gres/gpu:a100": "2"},
                                             "cpu": {}}  # fmt: skip
