"""Unit tests for spawners.slurm.client (async Slurm commands) and spawners.slurm.parsers."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from spawners.slurm import client as client_module
from spawners.slurm.client import (
    CommandResult,
    SlurmClient,
    SlurmCommandError,
    SlurmTimeoutError,
)
from spawners.slurm.cluster_parsers import parse_node_addresses
from spawners.slurm.parsers import (
    parse_accounting,
    parse_alloc_tres,
    parse_assoc_mgr,
    parse_sacct,
    parse_squeue,
    parse_squeue_start,
)
from spawners.slurm.types import AssociationUsage, JobState, JobStatus

pytestmark = pytest.mark.unit

SLURM_CONF = "/opt/slurm/etc/slurm.conf"


class FakeRunner:
    """Records every command; answers from a queue of results, raises when it runs dry."""

    def __init__(self, *results: CommandResult | BaseException) -> None:
        self.results = list(results)
        self.calls: list[dict] = []

    async def __call__(
        self, argv: Sequence[str], *, input: str | None, env: Mapping[str, str], timeout: float
    ) -> CommandResult:
        self.calls.append({"argv": list(argv), "input": input, "env": dict(env), "timeout": timeout})
        if not self.results:
            raise AssertionError(f"unexpected command: {argv}")
        result = self.results.pop(0)
        if isinstance(result, BaseException):
            raise result
        return result

    @property
    def argv(self) -> list[str]:
        assert len(self.calls) == 1, self.calls
        return self.calls[0]["argv"]


def ok(stdout: str = "") -> CommandResult:
    return CommandResult(0, stdout, "")


def failed(stderr: str, returncode: int = 1) -> CommandResult:
    return CommandResult(returncode, "", stderr)


@pytest.fixture
def hub_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A hub environment with a secret that must never reach Slurm commands."""
    monkeypatch.setenv("PATH", "/usr/local/bin:/usr/bin:/bin")
    monkeypatch.setenv("LANG", "C.UTF-8")
    monkeypatch.setenv("JUPYTERHUB_CRYPT_KEY", "hub-secret")
    monkeypatch.setenv("HOME", "/root")


# -- parsers ------------------------------------------------------------------------

SQUEUE_OUTPUT = """\
12|RUNNING|None|gpu01|2026-11-29T02:10:00|2026-11-29T03:10:00
13|PENDING|Resources|n/a|2026-11-29T03:10:00|2026-11-29T04:10:00
14|PENDING|AssocGrpBillingMinutes|n/a|N/A|N/A
15|PENDING|Priority|(null)|N/A|N/A
16|COMPLETING|None|gpu02|2026-11-29T01:00:00|2026-11-29T02:09:58
17|TIMEOUT|TimeLimit|gpu02|2026-11-29T00:00:00|2026-11-29T01:00:00
18_3|RUNNING|None|gpu03|2026-11-29T02:00:00|2026-11-29T03:00:00

"""


def test_parse_squeue_maps_states_and_blanks() -> None:
    statuses = parse_squeue(SQUEUE_OUTPUT)
    assert sorted(statuses) == ["12", "13", "14", "15", "16", "17"]  # array task skipped
    assert statuses["12"] == JobStatus(
        job_id="12",
        state=JobState.RUNNING,
        slurm_state="RUNNING",
        reason="",
        node="gpu01",
        start_time="2026-11-29T02:10:00",
        end_time="2026-11-29T03:10:00",
    )
    assert statuses["13"].state is JobState.PENDING
    assert (statuses["13"].reason, statuses["13"].node) == ("Resources", "")
    assert statuses["13"].start_time == "2026-11-29T03:10:00"
    assert statuses["14"].reason == "AssocGrpBillingMinutes"
    assert (statuses["14"].start_time, statuses["14"].end_time) == ("", "")
    assert statuses["15"].node == ""
    assert statuses["16"].state is JobState.COMPLETING
    assert (statuses["17"].state, statuses["17"].slurm_state, statuses["17"].reason) == (
        JobState.ENDED,
        "TIMEOUT",
        "TimeLimit",
    )


def test_parse_squeue_empty_and_malformed() -> None:
    assert parse_squeue("") == {}
    assert parse_squeue("\n\n") == {}
    with pytest.raises(ValueError, match="squeue line 1"):
        parse_squeue("12|RUNNING|None|gpu01")
    with pytest.raises(ValueError):
        parse_squeue("slurm_load_jobs error: Unable to contact slurm controller")


SACCT_OUTPUT = """\
20|COMPLETED|0:0|2026-11-29T01:00:00|2026-11-29T01:30:00|gpu01|1800|billing=2,cpu=4,gres/gpu:h200=1,gres/gpu=1,mem=16G,node=1|physics|alice
21|CANCELLED by 0|0:15|2026-11-29T01:00:00|2026-11-29T01:05:00|gpu02|300|billing=2,cpu=4,gres/gpu=1,node=1|physics|bob
22|FAILED|1:0|2026-11-29T01:00:00|2026-11-29T01:00:03|gpu01|3||physics|alice
23|PENDING|0:0|Unknown|Unknown|None assigned|0||physics|alice
24|OUT_OF_MEMORY|0:125|2026-11-29T01:00:00|2026-11-29T01:10:00|gpu03|600|cpu=4,node=1|chem|carol
25_1|COMPLETED|0:0|2026-11-29T01:00:00|2026-11-29T01:00:10|gpu01|10||chem|carol
"""


def test_parse_sacct_states_exit_codes_and_cancel() -> None:
    statuses = parse_sacct(SACCT_OUTPUT)
    assert sorted(statuses) == ["20", "21", "22", "23", "24"]
    assert statuses["20"] == JobStatus(
        job_id="20",
        state=JobState.ENDED,
        slurm_state="COMPLETED",
        node="gpu01",
        start_time="2026-11-29T01:00:00",
        end_time="2026-11-29T01:30:00",
        exit_code="0:0",
    )
    cancelled = statuses["21"]
    assert (cancelled.state, cancelled.slurm_state, cancelled.reason) == (
        JobState.ENDED,
        "CANCELLED",
        "cancelled by uid 0",
    )
    assert statuses["22"].exit_code == "1:0"
    pending = statuses["23"]
    assert (pending.state, pending.node, pending.start_time, pending.end_time) == (JobState.PENDING, "", "", "")
    assert statuses["24"].state is JobState.ENDED


def test_parse_sacct_malformed_and_unknown_state() -> None:
    with pytest.raises(ValueError, match="sacct line 1: expected 10 fields"):
        parse_sacct("20|COMPLETED|0:0")
    weird = parse_sacct("30|SOMETHING_NEW|0:0|Unknown|Unknown|None assigned|0||physics|alice\n")
    assert weird["30"].state is JobState.UNKNOWN


def test_parse_node_addresses_and_start_estimates() -> None:
    text = "gpu01|10.0.0.1\ngpu02|10.0.0.2\ngpu01|10.0.0.1\ngpu03|\n"
    assert parse_node_addresses(text) == {"gpu01": "10.0.0.1", "gpu02": "10.0.0.2", "gpu03": "gpu03"}
    with pytest.raises(ValueError):
        parse_node_addresses("gpu01 10.0.0.1\n")
    start = "13|2026-11-29T03:10:00|Resources\n14|N/A|AssocGrpBillingMinutes\n"
    assert parse_squeue_start(start) == {
        "13": ("2026-11-29T03:10:00", "Resources"),
        "14": ("", "AssocGrpBillingMinutes"),
    }


# -- command lines -------------------------------------------------------------------


async def test_squeue_by_name_argv_env_and_no_hub_secrets(hub_env: None) -> None:
    runner = FakeRunner(ok(SQUEUE_OUTPUT))
    client = SlurmClient(slurm_conf=SLURM_CONF, bin_dir="/opt/slurm/bin", runner=runner, timeout=7)
    assert await client.squeue(name="hpchub") == SQUEUE_OUTPUT
    assert runner.argv == [
        "/opt/slurm/bin/squeue",
        "--noheader",
        "--states=all",
        "--format=%i|%T|%r|%B|%S|%e",
        "--name=hpchub",
    ]
    call = runner.calls[0]
    assert call["env"] == {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "SLURM_CONF": SLURM_CONF}
    assert (call["input"], call["timeout"]) == (None, 7)


async def test_squeue_filters(hub_env: None) -> None:
    client = SlurmClient(runner=FakeRunner())  # any command would raise
    with pytest.raises(ValueError, match="job name or job ids"):
        await client.squeue()
    with pytest.raises(ValueError, match="commas"):
        await client.squeue(name="a,b")
    with pytest.raises(ValueError, match="job id"):
        await client.squeue(job_ids=["12", "12;rm"])
    assert await client.squeue(job_ids=[]) == ""

    runner = FakeRunner(ok(""))
    await SlurmClient(runner=runner).squeue(name="hpchub", job_ids=["12", "13"])
    assert runner.argv[0] == "squeue"  # bin_dir "" = PATH lookup
    assert runner.argv[-2:] == ["--name=hpchub", "--jobs=12,13"]


async def test_squeue_single_forgotten_job_is_empty_not_error(hub_env: None) -> None:
    forgotten = failed("slurm_load_jobs error: Invalid job id specified\n")
    client = SlurmClient(runner=FakeRunner(forgotten))
    assert await client.squeue(job_ids=["99"]) == ""
    # the same message for a name query is a real failure
    client = SlurmClient(runner=FakeRunner(forgotten))
    with pytest.raises(SlurmCommandError):
        await client.squeue(name="hpchub")


async def test_sacct_sinfo_sacctmgr_squeue_start_argv(hub_env: None) -> None:
    runner = FakeRunner(ok(SACCT_OUTPUT), ok(), ok(), ok(), ok())
    client = SlurmClient(runner=runner)
    assert await client.sacct(["20", "21"]) == SACCT_OUTPUT
    await client.sinfo()
    await client.user_accounts("alice")
    await client.squeue_start(["13"])
    await client.scontrol_show_node_addresses()
    argvs = [call["argv"] for call in runner.calls]
    assert argvs == [
        [
            "sacct",
            "--noheader",
            "--parsable2",
            "-X",
            "--allusers",
            "--jobs=20,21",
            "--format=JobID,State,ExitCode,Start,End,NodeList,ElapsedRaw,AllocTRES,Account,User",
        ],
        ["sinfo", "--noheader", "--format=%P|%l|%G|%N"],
        ["sacctmgr", "--noheader", "--parsable2", "show", "associations", "user=alice", "format=Account"],
        ["squeue", "--start", "--noheader", "--format=%i|%S|%r", "--jobs=13"],
        ["sinfo", "--noheader", "--Node", "--format=%N|%o"],
    ]
    assert await client.sacct([]) == ""  # nothing asked, nothing run
    with pytest.raises(ValueError):
        await client.user_accounts("alice smith")


@pytest.mark.parametrize(
    ("listed", "known"),
    [
        pytest.param("cs101\ncs101\n", True, id="listed-per-association"),
        pytest.param("", False, id="no-association"),
        pytest.param("cs1011\n", False, id="another-account-only"),
    ],
)
async def test_account_exists_reads_the_associations(hub_env: None, listed: str, known: bool) -> None:
    runner = FakeRunner(ok(listed))
    assert await SlurmClient(runner=runner).account_exists("cs101") is known
    assert runner.calls[0]["argv"] == [
        "sacctmgr", "--noheader", "--parsable2", "show", "associations", "account=cs101", "format=Account",
    ]  # fmt: skip


async def test_account_exists_refuses_an_unsafe_name_before_running_anything(hub_env: None) -> None:
    runner = FakeRunner()
    with pytest.raises(ValueError):
        await SlurmClient(runner=runner).account_exists("cs101 where name=x")
    assert runner.calls == []


async def test_sbatch_as_user_via_sudo_with_preserved_env(hub_env: None) -> None:
    runner = FakeRunner(ok("4242;cluster\n"))
    client = SlurmClient(slurm_conf=SLURM_CONF, sudo="/usr/bin/sudo", runner=runner)
    token = "tok-123"
    job_id = await client.sbatch(
        "#!/bin/bash\n#SBATCH --job-name=hpchub\n", as_user="alice", extra_env={"JUPYTERHUB_API_TOKEN": token}
    )
    assert job_id == "4242"
    call = runner.calls[0]
    assert call["argv"] == [
        "/usr/bin/sudo",
        "-n",
        "-u",
        "alice",
        "--preserve-env=JUPYTERHUB_API_TOKEN,LANG,SLURM_CONF",
        "sbatch",
        "--parsable",
    ]
    assert call["input"].startswith("#!/bin/bash\n")
    assert call["env"]["JUPYTERHUB_API_TOKEN"] == token
    assert "JUPYTERHUB_CRYPT_KEY" not in call["env"]


async def test_sudo_is_not_asked_to_preserve_what_it_sets_for_the_user(hub_env: None) -> None:
    """batchspawner's HOME/USER/SHELL: sudo sets them to the target's own values; a service account's
    sudoers rule (env_keep) would refuse to preserve them."""
    runner = FakeRunner(ok("4242\n"))
    client = SlurmClient(slurm_conf=SLURM_CONF, sudo="/usr/bin/sudo", runner=runner)
    extra = {"HOME": "/home/alice", "USER": "alice", "SHELL": "/bin/bash", "LOGNAME": "alice", "JUPYTER_PATH": "/p"}
    await client.sbatch("#!/bin/bash\n", as_user="alice", extra_env=extra)
    argv = runner.calls[0]["argv"]
    assert "--preserve-env=JUPYTER_PATH,LANG,SLURM_CONF" in argv
    assert runner.calls[0]["env"]["HOME"] == "/home/alice"


async def test_as_user_without_env_to_preserve(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LANG", raising=False)
    runner = FakeRunner(ok())
    await SlurmClient(runner=runner).scancel("77", as_user="bob")
    assert runner.argv == ["/usr/bin/sudo", "-n", "-u", "bob", "scancel", "77"]


@pytest.mark.parametrize("user", ["root;id", "Alice", "-u", "", "a" * 33, "bob\n"])
async def test_invalid_as_user_rejected_before_running(hub_env: None, user: str) -> None:
    client = SlurmClient(runner=FakeRunner())
    with pytest.raises(ValueError, match="user name"):
        await client.sbatch("#!/bin/bash\n", as_user=user)


async def test_extra_env_rules(hub_env: None) -> None:
    client = SlurmClient(runner=FakeRunner())
    for bad in ({"PATH": "/tmp"}, {"SLURM_CONF": "/tmp/x"}, {"BAD-NAME": "x"}, {"A,B": "x"}):
        with pytest.raises(ValueError):
            await client.run(["squeue", "--noheader"], extra_env=bad)
    with pytest.raises(ValueError, match="Slurm command"):
        await client.run(["/bin/sh", "-c", "id"])


async def test_sbatch_output_without_job_id_is_an_error(hub_env: None) -> None:
    client = SlurmClient(runner=FakeRunner(ok("Submitted batch job\n")))
    with pytest.raises(SlurmCommandError, match="^sbatch failed: unexpected output") as info:
        await client.sbatch("#!/bin/bash\n", as_user="alice")
    assert info.value.returncode == 0


async def test_nonzero_exit_raises_with_one_line_summary(hub_env: None) -> None:
    stderr = (
        "sbatch: error: Batch job submission failed: Invalid account or account/partition combination specified\n"
        "second line\n"
    )
    client = SlurmClient(runner=FakeRunner(failed(stderr)))
    with pytest.raises(SlurmCommandError) as info:
        await client.sbatch("#!/bin/bash\n", as_user="alice")
    error = info.value
    assert error.returncode == 1 and error.stderr == stderr
    assert error.argv[0] == "/usr/bin/sudo" and error.command == "sbatch"
    assert str(error) == (
        "sbatch exited with 1: sbatch: error: Batch job submission failed: "
        "Invalid account or account/partition combination specified"
    )
    assert "\n" not in str(error)


async def test_summary_prefers_the_error_line_over_a_warning(hub_env: None) -> None:
    stderr = "sbatch: Warning: can't honor --ntasks-per-node set to 1\nsbatch: error: QOSMaxGRESPerUser\n"
    with pytest.raises(SlurmCommandError) as info:
        await SlurmClient(runner=FakeRunner(failed(stderr))).sbatch("#!/bin/bash\n", as_user="alice")
    assert info.value.first_stderr_line == "sbatch: error: QOSMaxGRESPerUser"
    assert info.value.summary == "sbatch exited with 1: sbatch: error: QOSMaxGRESPerUser"


async def test_timeout_raises_slurm_timeout_error(hub_env: None) -> None:
    client = SlurmClient(runner=FakeRunner(TimeoutError()), timeout=5)
    with pytest.raises(SlurmTimeoutError) as info:
        await client.squeue(name="hpchub")
    assert info.value.returncode is None
    assert str(info.value) == "squeue timed out after 5s"
    assert isinstance(info.value, SlurmCommandError)


@pytest.mark.parametrize(
    "stderr",
    [
        "scancel: error: Kill job error on job id 55: Invalid job id specified\n",
        "scancel: error: Kill job error on job id 55: Job/step already completing or completed\n",
    ],
)
async def test_scancel_of_finished_job_succeeds(hub_env: None, stderr: str) -> None:
    await SlurmClient(runner=FakeRunner(failed(stderr))).scancel("55")


async def test_scancel_other_errors_and_bad_ids(hub_env: None) -> None:
    denied = failed("scancel: error: Kill job error on job id 55: Access/permission denied\n")
    with pytest.raises(SlurmCommandError, match="permission denied"):
        await SlurmClient(runner=FakeRunner(denied)).scancel("55", as_user="bob")
    with pytest.raises(ValueError):
        await SlurmClient(runner=FakeRunner()).scancel("55 56")


async def test_debug_log_has_argv_but_no_env_values(hub_env: None, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="spawners.slurm.client")
    client = SlurmClient(runner=FakeRunner(ok("1\n")))
    await client.sbatch("#!/bin/bash\n", as_user="alice", extra_env={"JUPYTERHUB_API_TOKEN": "tok-secret"})
    assert "sbatch --parsable" in caplog.text
    assert "tok-secret" not in caplog.text and "hub-secret" not in caplog.text


# -- the real subprocess runner -------------------------------------------------------


def _fake_binary(directory: Path, name: str, body: str) -> None:
    path = directory / name
    path.write_text(f"#!{sys.executable}\n{body}")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


async def test_subprocess_runner_end_to_end(hub_env: None, tmp_path: Path) -> None:
    _fake_binary(
        tmp_path,
        "sbatch",
        "import os, sys\n"
        "script = sys.stdin.read()\n"
        "print('warn', file=sys.stderr)\n"
        "print(f\"{len(script)};{os.environ.get('SLURM_CONF')};{os.environ.get('JUPYTERHUB_CRYPT_KEY')}\")\n"
        "print(f\"{os.environ['TOKEN']};x\")\n",
    )
    client = SlurmClient(slurm_conf=SLURM_CONF, bin_dir=str(tmp_path))
    stdout = await client.run(["sbatch", "--parsable"], input="abc", extra_env={"TOKEN": "123"})
    assert stdout.splitlines() == [f"3;{SLURM_CONF};None", "123;x"]


def _assert_reaped(pid_file: Path) -> None:
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):  # gone and waited for: not even a zombie
        os.kill(pid, 0)


SLEEPER = (
    "import os, signal, sys, time\n"
    "if sys.argv[-1] == '--name=stubborn':\n"
    "    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "open(os.path.join(os.path.dirname(sys.argv[0]), 'pid'), 'w').write(str(os.getpid()))\n"
    "time.sleep(30)\n"
)


async def _wait_for_file(path: Path) -> None:
    for _ in range(200):
        if path.exists() and path.read_text():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{path} never written")


@pytest.mark.parametrize("name", ["polite", "stubborn"])  # stubborn ignores SIGTERM: SIGKILL follows
async def test_subprocess_runner_stops_process_on_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setattr(client_module, "TERMINATE_GRACE_SECONDS", 0.3)
    _fake_binary(tmp_path, "squeue", SLEEPER)
    client = SlurmClient(bin_dir=str(tmp_path), timeout=1.0)
    started = time.monotonic()
    with pytest.raises(SlurmTimeoutError):
        await client.squeue(name=name)
    assert time.monotonic() - started < 5  # timeout + grace, not the 30 s the command wanted
    _assert_reaped(tmp_path / "pid")


async def test_subprocess_runner_stops_process_on_cancel(tmp_path: Path) -> None:
    _fake_binary(tmp_path, "squeue", SLEEPER)
    task = asyncio.create_task(SlurmClient(bin_dir=str(tmp_path), timeout=30).squeue(name="hpchub"))
    await _wait_for_file(tmp_path / "pid")
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 5
    _assert_reaped(tmp_path / "pid")


async def test_missing_binary_is_a_command_error(tmp_path: Path) -> None:
    client = SlurmClient(bin_dir=str(tmp_path))
    with pytest.raises(SlurmCommandError) as info:
        await client.sinfo()
    assert info.value.returncode == 127
    assert str(info.value).startswith("sinfo exited with 127: cannot execute")


# -- accounting for the ledger's reconciler (literal output of Slurm 22.05.8) -------------------------

# TZ=UTC sacct --noheader --parsable2 -X --allusers --accounts=vision-lab,cs101,tiny-lab
#   --starttime=... --endtime=now --state=CD,CA,F,TO,NF,PR,OOM,DL,BF,R
#   --format=JobID,User,Account,State,ElapsedRaw,AllocTRES,Start,End,Cluster,TimelimitRaw
ACCOUNTING_OUTPUT = """\
1|erin|tiny-lab|CANCELLED by 0|0||None|2026-11-29T02:48:14|explore|5
2|erin|tiny-lab|COMPLETED|3|cpu=1,mem=1000M,node=1|2026-11-29T02:48:07|2026-11-29T02:48:10|explore|5
3|bob|vision-lab|TIMEOUT|87|billing=2,cpu=4,gres/gpu:h200=1,gres/gpu=1,mem=16000M,node=1|2026-11-29T02:50:33|2026-11-29T02:52:00|explore|1
5|carol|cs101|FAILED|0|billing=1,cpu=4,gres/gpu:a100=1,gres/gpu=1,mem=16000M,node=1|2026-11-29T02:50:33|2026-11-29T02:50:33|explore|20
6_1|alice|vision-lab|COMPLETED|2|billing=2,cpu=4,gres/gpu:h200=1,gres/gpu=1,mem=16000M,node=1|2026-11-29T02:50:33|2026-11-29T02:50:35|explore|5
8|alice|vision-lab|RUNNING|26|billing=4,cpu=8,gres/gpu:h200=2,gres/gpu=2,mem=32000M,node=1|2026-11-29T02:53:34|Unknown|explore|10
9|bob|vision-lab|CANCELLED by 1002|8|billing=2,cpu=4,gres/gpu:h200=1,gres/gpu=1,mem=16000M,node=1|2026-11-29T02:16:39|2026-11-29T02:16:47|explore|60
"""

UTC = timezone.utc


def test_parse_accounting_literal_sacct() -> None:
    records = {record.job_id: record for record in parse_accounting(ACCOUNTING_OUTPUT)}
    assert list(records) == ["1", "2", "3", "5", "6_1", "8", "9"]
    cancelled_pending = records["1"]
    assert (cancelled_pending.state, cancelled_pending.slurm_state, cancelled_pending.start) == (
        JobState.ENDED, "CANCELLED", None,
    )  # fmt: skip
    assert (cancelled_pending.gpu_type_counts, cancelled_pending.untyped_gpus) == ({}, 0)
    assert records["2"].gpu_type_counts == {} and records["2"].elapsed_seconds == 3  # cpu partition
    timeout = records["3"]
    assert (timeout.user, timeout.account, timeout.slurm_state, timeout.elapsed_seconds) == (
        "bob",
        "vision-lab",
        "TIMEOUT",
        87,
    )
    assert (timeout.gpu_type_counts, timeout.untyped_gpus, timeout.time_limit_minutes) == ({"h200": 1}, 1, 1)
    assert (timeout.start, timeout.end) == (
        datetime(2026, 11, 29, 2, 50, 33, tzinfo=UTC),
        datetime(2026, 11, 29, 2, 52, tzinfo=UTC),
    )
    assert records["5"].gpu_type_counts == {"a100": 1}
    running = records["8"]
    assert (running.state, running.end, running.elapsed_seconds, running.gpu_type_counts) == (
        JobState.RUNNING, None, 26, {"h200": 2},
    )  # fmt: skip
    assert running.cluster == "explore"


def test_parse_accounting_reads_times_in_the_given_zone_and_skips_pending_array_parts() -> None:
    line = "7_[3-9]|alice|vision-lab|CANCELLED by 0|0||None|2026-11-29T02:48:14|explore|5\n"
    assert parse_accounting(line) == []
    plus_one = timezone(timedelta(hours=1))
    [record] = parse_accounting(ACCOUNTING_OUTPUT.splitlines()[2], tz=plus_one)
    assert record.start == datetime(2026, 11, 29, 1, 50, 33, tzinfo=UTC)
    [het] = parse_accounting(
        "12+1|bob|vision-lab|COMPLETED|60|billing=2,gres/gpu:h200=1,gres/gpu=1|2026-11-29T02:00:00|2026-11-29T02:01:00|explore|UNLIMITED\n"
    )
    assert (het.job_id, het.time_limit_minutes) == ("12+1", None)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        pytest.param("3|bob|vision-lab|TIMEOUT|87", "expected 10 fields", id="short-line"),
        pytest.param("3|bob|vision-lab|TIMEOUT||billing=2|None|None|explore|1", "ElapsedRaw", id="no-elapsed"),
        pytest.param(
            "3|bob|vision-lab|TIMEOUT|5|gres/gpu:h200=x|None|None|explore|1", "not a GPU count", id="bad-gpu-count"
        ),
        pytest.param("3|bob|vision-lab|TIMEOUT|5||yesterday|None|explore|1", "Start is not a time", id="bad-start"),
        pytest.param(
            "sacct: error: Problem talking to the database: Connection refused", "expected 10 fields", id="error-text"
        ),
    ],
)
def test_parse_accounting_is_strict(line: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_accounting(line + "\n")


@pytest.mark.parametrize(
    ("alloc_tres", "typed", "untyped"),
    [
        pytest.param("billing=2,cpu=4,gres/gpu:h200=1,gres/gpu=1,mem=16000M,node=1", {"h200": 1}, 1, id="one-h200"),
        pytest.param("billing=4,cpu=8,gres/gpu:h200=2,gres/gpu=2,mem=32000M,node=1", {"h200": 2}, 2, id="two-h200"),
        pytest.param(
            "billing=1,cpu=4,gres/gpu:a100=1,gres/gpu=1,mem=16000M,node=1", {"a100": 1}, 1, id="a100-billing-1"
        ),
        pytest.param("billing=5,gres/gpu:a100=1,gres/gpu:h200=2,gres/gpu=3", {"a100": 1, "h200": 2}, 3, id="two-types"),
        pytest.param("cpu=1,mem=1000M,node=1", {}, 0, id="cpu-only"),
        pytest.param("billing=0,cpu=4,gres/gpu=1,node=1", {}, 1, id="untyped-gpu"),
        pytest.param("", {}, 0, id="never-ran"),
    ],
)
def test_parse_alloc_tres(alloc_tres: str, typed: dict, untyped: int) -> None:
    assert parse_alloc_tres(alloc_tres) == (typed, untyped)


# scontrol show assoc_mgr accounts=vision-lab,cs101 flags=assoc (bob capped at 2393, one job running)
ASSOC_MGR_OUTPUT = """\
Current Association Manager state

Association Records

ClusterName=explore Account=cs101 UserName= Partition= Priority=0 ID=4
    SharesRaw/Norm/Level/Factor=1/0.25/4/0.00
    UsageRaw/Norm/Efctv=0.00/0.00/0.00
    ParentAccount=root(1) Lft=6 DefAssoc=No
    GrpJobs=N(0) GrpJobsAccrue=N(0)
    GrpSubmitJobs=N(0) GrpWall=N(0.00)
    GrpTRES=cpu=N(0),mem=N(0),energy=N(0),node=N(0),billing=N(0),fs/disk=N(0),vmem=N(0),pages=N(0),gres/gpu=N(0),gres/gpu:a100=N(0),gres/gpu:h200=N(0)
    GrpTRESMins=cpu=N(0),mem=N(0),energy=N(0),node=N(0),billing=5980(0),fs/disk=N(0),vmem=N(0),pages=N(0),gres/gpu=N(0),gres/gpu:a100=N(0),gres/gpu:h200=N(0)
    GrpTRESRunMins=cpu=N(0),mem=N(0),energy=N(0),node=N(0),billing=N(0),fs/disk=N(0),vmem=N(0),pages=N(0),gres/gpu=N(0),gres/gpu:a100=N(0),gres/gpu:h200=N(0)
    MaxJobs= MaxJobsAccrue= MaxSubmitJobs= MaxWallPJ=
    MaxTRESPJ=
    MaxTRESPN=
    MaxTRESMinsPJ=
    MinPrioThresh=
ClusterName=explore Account=vision-lab UserName= Partition= Priority=0 ID=3
    SharesRaw/Norm/Level/Factor=1/0.25/4/0.00
    UsageRaw/Norm/Efctv=236.00/1.00/1.00
    ParentAccount=root(1) Lft=14 DefAssoc=No
    GrpJobs=N(1) GrpJobsAccrue=N(0)
    GrpSubmitJobs=N(1) GrpWall=N(1.93)
    GrpTRES=cpu=N(8),mem=N(32000),energy=N(0),node=N(1),billing=N(4),fs/disk=N(0),vmem=N(0),pages=N(0),gres/gpu=N(2),gres/gpu:a100=N(0),gres/gpu:h200=N(2)
    GrpTRESMins=cpu=N(15),mem=N(61416),energy=N(0),node=N(1),billing=11993(3),fs/disk=N(0),vmem=N(0),pages=N(0),gres/gpu=N(3),gres/gpu:a100=N(0),gres/gpu:h200=N(3)
    GrpTRESRunMins=cpu=N(80),mem=N(320000),energy=N(0),node=N(10),billing=N(40),fs/disk=N(0),vmem=N(0),pages=N(0),gres/gpu=N(20),gres/gpu:a100=N(0),gres/gpu:h200=N(20)
    MaxJobs= MaxJobsAccrue= MaxSubmitJobs= MaxWallPJ=
    MaxTRESPJ=
    MaxTRESPN=
    MaxTRESMinsPJ=
    MinPrioThresh=
ClusterName=explore Account=vision-lab UserName=bob(1002) Partition= Priority=0 ID=7
    SharesRaw/Norm/Level/Factor=1/0.50/2/0.14
    UsageRaw/Norm/Efctv=56.00/1.00/1.00
    ParentAccount= Lft=15 DefAssoc=Yes
    GrpJobs=N(0) GrpJobsAccrue=N(0)
    GrpSubmitJobs=N(0) GrpWall=N(0.47)
    GrpTRES=cpu=N(0),mem=N(0),energy=N(0),node=N(0),billing=N(0),fs/disk=N(0),vmem=N(0),pages=N(0),gres/gpu=N(0),gres/gpu:a100=N(0),gres/gpu:h200=N(0)
    GrpTRESMins=cpu=N(3),mem=N(14933),energy=N(0),node=N(0),billing=2393(3),fs/disk=N(0),vmem=N(0),pages=N(0),gres/gpu=N(0),gres/gpu:a100=N(0),gres/gpu:h200=N(0)
    GrpTRESRunMins=cpu=N(0),mem=N(0),energy=N(0),node=N(0),billing=N(0),fs/disk=N(0),vmem=N(0),pages=N(0),gres/gpu=N(0),gres/gpu:a100=N(0),gres/gpu:h200=N(0)
    MaxJobs= MaxJobsAccrue= MaxSubmitJobs= MaxWallPJ=
    MaxTRESPJ=
    MaxTRESPN=
    MaxTRESMinsPJ=
    MinPrioThresh=
"""


def test_parse_assoc_mgr_literal() -> None:
    assert parse_assoc_mgr(ASSOC_MGR_OUTPUT) == [
        AssociationUsage("explore", "cs101", None, None, 5980, 0, 0),
        AssociationUsage("explore", "vision-lab", None, None, 11993, 3, 40),
        AssociationUsage("explore", "vision-lab", "bob", None, 2393, 3, 0),
    ]
    assert parse_assoc_mgr(ASSOC_MGR_OUTPUT)[1].used_and_running_minutes == 43


def test_parse_assoc_mgr_limits_on_run_minutes_and_partitions() -> None:
    text = (
        "ClusterName=hpchub Account=cs101 UserName=carol(1005) Partition=debug Priority=0 ID=12\n"
        "    GrpTRESMins=cpu=N(0),billing=600(17)\n"
        "    GrpTRESRunMins=billing=300(60),gres/gpu=N(30)\n"
    )
    assert parse_assoc_mgr(text) == [AssociationUsage("hpchub", "cs101", "carol", "debug", 600, 17, 60)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "ClusterName=c Account=a UserName= Partition=\n    GrpTRESMins=billing=N(0)\n",
            "no GrpTRESRunMins",
            id="no-run-minutes",
        ),
        pytest.param(
            "ClusterName=c Account=a UserName= Partition=\n    GrpTRESMins=cpu=N(0)\n    GrpTRESRunMins=billing=N(0)\n",
            "no billing item",
            id="no-billing",
        ),
        pytest.param(
            "ClusterName=c Account=a UserName= Partition=\n    GrpTRESMins=billing=12.5(0)\n    GrpTRESRunMins=billing=N(0)\n",
            "unreadable billing",
            id="fractional",
        ),
        pytest.param("ClusterName=c Account= UserName= Partition=\n", "without an account", id="no-account"),
    ],
)
def test_parse_assoc_mgr_is_strict(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_assoc_mgr(text)


def test_parse_assoc_mgr_nothing_cached() -> None:
    assert parse_assoc_mgr("Current Association Manager state\n\nNo associations currently cached in Slurm.\n\n") == []


async def test_sacct_accounts_assoc_mgr_and_sacctmgr_argv(hub_env: None) -> None:
    runner = FakeRunner(
        ok(ACCOUNTING_OUTPUT),
        ok(ACCOUNTING_OUTPUT),
        ok(ASSOC_MGR_OUTPUT),
        ok(" Modified account associations...\n"),
        ok(),
    )
    client = SlurmClient(slurm_conf=SLURM_CONF, runner=runner)
    start = datetime(2026, 10, 30, 1, 2, 3, tzinfo=timezone(timedelta(hours=2)))
    assert await client.sacct_accounts(["cs101", "vision-lab"], start=start) == ACCOUNTING_OUTPUT
    await client.sacct_accounts(["cs101"], start=start, cluster="hpchub")
    assert await client.assoc_mgr(["cs101", "vision-lab"]) == ASSOC_MGR_OUTPUT
    await client.sacctmgr_modify("account", "vision-lab", cluster="hpchub", settings={"GrpTRESMins": "billing=11993"})
    await client.sacctmgr_modify(
        "user", "bob", account="vision-lab", cluster="hpchub", settings={"GrpTRESMins": "billing=-1"}
    )
    argvs = [call["argv"] for call in runner.calls]
    assert argvs == [
        [
            "sacct", "--noheader", "--parsable2", "-X", "--allusers", "--accounts=cs101,vision-lab",
            "--starttime=2026-10-29T23:02:03", "--endtime=now", "--state=CD,CA,F,TO,NF,PR,OOM,DL,BF,R",
            "--format=JobID,User,Account,State,ElapsedRaw,AllocTRES,Start,End,Cluster,TimelimitRaw",
        ],
        [
            "sacct", "--noheader", "--parsable2", "-X", "--allusers", "--accounts=cs101",
            "--starttime=2026-10-29T23:02:03", "--endtime=now", "--state=CD,CA,F,TO,NF,PR,OOM,DL,BF,R",
            "--format=JobID,User,Account,State,ElapsedRaw,AllocTRES,Start,End,Cluster,TimelimitRaw",
            "--clusters=hpchub",
        ],
        ["scontrol", "show", "assoc_mgr", "accounts=cs101,vision-lab", "flags=assoc"],
        ["sacctmgr", "-i", "modify", "account", "where", "name=vision-lab", "cluster=hpchub", "set", "GrpTRESMins=billing=11993"],
        [
            "sacctmgr", "-i", "modify", "user", "where", "name=bob", "account=vision-lab", "cluster=hpchub",
            "set", "GrpTRESMins=billing=-1",
        ],
    ]  # fmt: skip
    assert runner.calls[0]["env"] == {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "SLURM_CONF": SLURM_CONF,
        "TZ": "UTC",
    }
    assert await client.sacct_accounts([], start=start) == "" and await client.assoc_mgr([]) == ""  # nothing run


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda c: c.sacct_accounts(["vision-lab,root"], start=datetime.now(UTC)), id="comma-in-account"),
        pytest.param(lambda c: c.sacct_accounts(["-x"], start=datetime.now(UTC)), id="option-as-account"),
        pytest.param(lambda c: c.sacct_accounts("vision-lab", start=datetime.now(UTC)), id="one-string"),
        pytest.param(lambda c: c.sacct_accounts(["a"], start=datetime(2026, 1, 1)), id="naive-start"),
        pytest.param(lambda c: c.sacct_accounts(["a"], start=datetime.now(UTC), cluster="a b"), id="bad-cluster"),
        pytest.param(lambda c: c.assoc_mgr(["a b"]), id="space-in-account"),
        pytest.param(
            lambda c: c.sacctmgr_modify("qos", "a", cluster="c", settings={"GrpTRESMins": "billing=1"}), id="entity"
        ),
        pytest.param(
            lambda c: c.sacctmgr_modify("account", "a", cluster="c", settings={"Fairshare": "1"}), id="setting"
        ),
        pytest.param(
            lambda c: c.sacctmgr_modify("account", "a", cluster="c", settings={"GrpTRESMins": "billing=1 x"}),
            id="value-space",
        ),
        pytest.param(
            lambda c: c.sacctmgr_modify("account", "a", cluster="c", settings={"GrpTRESMins": "billing=1.5"}),
            id="value-fraction",
        ),
        pytest.param(lambda c: c.sacctmgr_modify("account", "a", cluster="c", settings={}), id="no-setting"),
        pytest.param(
            lambda c: c.sacctmgr_modify("user", "bob", cluster="c", settings={"GrpTRESMins": "billing=1"}),
            id="user-without-account",
        ),
        pytest.param(
            lambda c: c.sacctmgr_modify("user", "Bob;x", account="a", cluster="c", settings={"MaxSubmitJobs": "0"}),
            id="bad-user",
        ),
        pytest.param(
            lambda c: c.sacctmgr_modify("account", "a", account="b", cluster="c", settings={"MaxSubmitJobs": "0"}),
            id="account-with-account",
        ),
    ],
)
async def test_accounting_commands_validate_before_running(hub_env: None, call) -> None:
    with pytest.raises((ValueError, TypeError)):
        await call(SlurmClient(runner=FakeRunner()))  # any command would raise AssertionError


async def test_sacctmgr_nothing_modified_is_an_error_with_its_stdout(hub_env: None) -> None:
    client = SlurmClient(runner=FakeRunner(CommandResult(1, " Nothing modified\n", "")))
    with pytest.raises(SlurmCommandError) as info:
        await client.sacctmgr_modify("account", "nosuch", cluster="hpchub", settings={"GrpTRESMins": "billing=5"})
    assert str(info.value) == "sacctmgr exited with 1: Nothing modified"


async def test_update_time_limit_argv_runs_as_the_hub(hub_env: None) -> None:
    runner = FakeRunner(ok())
    client = SlurmClient(slurm_conf=SLURM_CONF, runner=runner)
    await client.update_time_limit("123", 120)
    assert runner.argv == ["scontrol", "update", "JobId=123", "TimeLimit=120"]  # no sudo: the hub is the operator


@pytest.mark.parametrize(
    ("job_id", "minutes"),
    [
        pytest.param("12;x", 60, id="job-id-injection"),
        pytest.param("12 TimeLimit=9999", 60, id="job-id-with-space"),
        pytest.param("", 60, id="empty-job-id"),
        pytest.param("123", 0, id="zero-minutes"),
        pytest.param("123", -5, id="negative-minutes"),
        pytest.param("123", 1.5, id="fractional-minutes"),
        pytest.param("123", "60", id="string-minutes"),
        pytest.param("123", True, id="bool-minutes"),
        pytest.param("123", client_module.MAX_TIME_LIMIT_MINUTES + 1, id="over-a-year"),
    ],
)
async def test_update_time_limit_validates_before_running(hub_env: None, job_id, minutes) -> None:
    with pytest.raises(ValueError):
        await SlurmClient(runner=FakeRunner()).update_time_limit(job_id, minutes)


async def test_update_time_limit_failure_carries_slurms_message(hub_env: None) -> None:
    client = SlurmClient(runner=FakeRunner(failed("slurm_update error: Access/permission denied")))
    with pytest.raises(SlurmCommandError) as info:
        await client.update_time_limit("123", 120)
    assert info.value.first_stderr_line == "slurm_update error: Access/permission denied"
