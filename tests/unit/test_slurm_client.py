"""Unit tests for spawners.slurm.client (async Slurm commands) and spawners.slurm.parsers."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from spawners.slurm import client as client_module
from spawners.slurm.client import CommandResult, SlurmClient, SlurmCommandError, SlurmTimeoutError
from spawners.slurm.parsers import (
    parse_node_addresses,
    parse_sacct,
    parse_squeue,
    parse_squeue_start,
)
from spawners.slurm.types import JobState, JobStatus

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
