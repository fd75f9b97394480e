"""Unit tests for the sbatch script renderer (spawners/slurm/script.py)."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from pathlib import Path

import pytest

from spawners.slurm.script import (
    ScriptError,
    job_comment,
    parse_job_comment,
    render_batch_script,
)
from spawners.slurm.types import JobRequest

pytestmark = pytest.mark.unit

GOLDEN_DIR = Path(__file__).parent / "golden"
VENV = "/var/lib/hpchub-demo/envs/default"
EXPORT_VARS = (
    "JUPYTERHUB_API_TOKEN",
    "JPY_API_TOKEN",
    "JUPYTERHUB_API_URL",
    "JUPYTERHUB_CLIENT_ID",
    "JUPYTERHUB_USER",
    "JUPYTERHUB_SERVER_NAME",
    "JUPYTERHUB_SERVICE_PREFIX",
    "JUPYTERHUB_OAUTH_CALLBACK_URL",
    "HOME",
    "PATH",
)
COMMAND = (
    f"{VENV}/bin/batchspawner-singleuser",
    f"{VENV}/bin/jupyterhub-singleuser",
    "--SingleUserNotebookApp.default_url=/lab",
)
BOB_GPU = JobRequest("vision-lab", "gpu", "h200", 1, Decimal(1), "default")


def render_for(request: JobRequest, username: str = "bob", server_name: str = "", **overrides) -> str:
    arguments = {
        "job_name": f"hpchub-{username}" + (f"-{server_name}" if server_name else ""),
        "comment": job_comment(username, server_name),
        "output_path": f"/home/{username}/.hpchub/logs/jupyter-%j.log",
        "workdir": f"/home/{username}",
        "export_vars": EXPORT_VARS,
        "command": COMMAND,
    }
    arguments.update(overrides)
    return render_batch_script(request, **arguments)


GOLDEN_CASES = {
    "bob_h200x1_gpu_1h": lambda: render_for(BOB_GPU, prologue=(f"source {VENV}/bin/activate",)),
    "bob_cpu_0gpus_15min": lambda: render_for(JobRequest("vision-lab", "cpu", None, 0, Decimal("0.25"), "default")),
    "bob_a100x4_debug_30min_named": lambda: render_for(
        JobRequest("vision-lab", "debug", "a100", 4, Decimal("0.5"), "default"),
        server_name="training",
        extra_sbatch=("--mem-per-gpu=16G",),
    ),
    "carol_a100x1_gpu_1h_lab_hours": lambda: render_for(
        JobRequest("cs101", "gpu", "a100", 1, Decimal(1), "default", reservation="cs101-lab"), username="carol"
    ),
}


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_golden_script(name: str) -> None:
    expected = (GOLDEN_DIR / f"{name}.sbatch").read_text(encoding="utf-8")
    assert GOLDEN_CASES[name]() == expected


def test_time_is_whole_minutes() -> None:
    script = render_for(dataclasses.replace(BOB_GPU, hours=Decimal("1.5")))
    assert "#SBATCH --time=90\n" in script


def test_export_is_sorted_deduplicated_and_none_when_empty() -> None:
    assert "#SBATCH --export=A_B,HOME,PATH\n" in render_for(BOB_GPU, export_vars=("PATH", "HOME", "A_B", "PATH"))
    assert "#SBATCH --export=NONE\n" in render_for(BOB_GPU, export_vars=())


def test_command_arguments_are_shell_quoted() -> None:
    script = render_for(BOB_GPU, command=("/bin/echo", "a b", "$(id)", "it's"))
    assert script.splitlines()[-1] == "exec /bin/echo 'a b' '$(id)' 'it'\"'\"'s'"


def test_no_gres_line_without_gpus() -> None:
    script = render_for(JobRequest("vision-lab", "cpu", None, 0, Decimal(1), "default"))
    assert "--gres" not in script


MALICIOUS = [
    "x\n#SBATCH --account=other",
    "x --account=other",
    "#SBATCH",
    "x;rm",
    "$(id)",
    "`id`",
    "a'b",
    'a"b',
    "a\\b",
    "a\tb",
    "",
]


@pytest.mark.parametrize("value", MALICIOUS, ids=repr)
@pytest.mark.parametrize("field", ["project", "partition", "gpu_type", "reservation"])
def test_malicious_request_values_raise(field: str, value: str) -> None:
    request = dataclasses.replace(BOB_GPU, **{field: value})
    with pytest.raises(ScriptError):
        render_for(request)


@pytest.mark.parametrize("value", MALICIOUS, ids=repr)
@pytest.mark.parametrize("argument", ["job_name", "comment", "output_path", "workdir"])
def test_malicious_directive_arguments_raise(argument: str, value: str) -> None:
    with pytest.raises(ScriptError):
        render_for(BOB_GPU, **{argument: value})


@pytest.mark.parametrize(
    "request_",
    [
        pytest.param(dataclasses.replace(BOB_GPU, gpus=True), id="gpus-bool"),
        pytest.param(dataclasses.replace(BOB_GPU, gpus=-1), id="gpus-negative"),
        pytest.param(dataclasses.replace(BOB_GPU, gpus="1"), id="gpus-string"),
        pytest.param(dataclasses.replace(BOB_GPU, gpu_type=None), id="gpus-without-type"),
        pytest.param(dataclasses.replace(BOB_GPU, gpu_type="h200:2,gpu:a100"), id="gres-smuggling"),
        pytest.param(dataclasses.replace(BOB_GPU, hours=Decimal(0)), id="hours-zero"),
        pytest.param(dataclasses.replace(BOB_GPU, hours=Decimal("-1")), id="hours-negative"),
        pytest.param(dataclasses.replace(BOB_GPU, hours=Decimal("NaN")), id="hours-nan"),
        pytest.param(dataclasses.replace(BOB_GPU, hours=Decimal("0.001")), id="hours-fraction-of-minute"),
        pytest.param(dataclasses.replace(BOB_GPU, hours=1.5), id="hours-float"),
    ],
)
def test_bad_numbers_raise(request_: JobRequest) -> None:
    with pytest.raises(ScriptError):
        render_for(request_)


@pytest.mark.parametrize("names", [("path",), ("PATH VAR",), ("PATH,HOME",), ("1X",), ("X\n",)], ids=repr)
def test_bad_export_names_raise(names: tuple[str, ...]) -> None:
    with pytest.raises(ScriptError, match="--export"):
        render_for(BOB_GPU, export_vars=names)


@pytest.mark.parametrize(
    "directive", ["--mem=4G --account=x", "mem=4G", "--mem=4G\n#SBATCH -A x", "-A x", "--x=$(id)"], ids=repr
)
def test_bad_extra_sbatch_raise(directive: str) -> None:
    with pytest.raises(ScriptError):
        render_for(BOB_GPU, extra_sbatch=(directive,))


def test_empty_command_raises() -> None:
    with pytest.raises(ScriptError, match="command"):
        render_for(BOB_GPU, command=())
    with pytest.raises(ScriptError, match="command"):
        render_for(BOB_GPU, command="/bin/true")


def test_job_comment_round_trip() -> None:
    assert job_comment("bob", "") == "hpchub:user=bob,server="
    assert job_comment("bob", "training") == "hpchub:user=bob,server=training"
    assert parse_job_comment("hpchub:user=bob,server=") == ("bob", "")
    assert parse_job_comment("hpchub:user=bob,server=training\n") == ("bob", "training")


@pytest.mark.parametrize(
    "comment",
    ["", "(null)", "hpchub:user=,server=", "hpchub:user=bob", "other:user=bob,server=", "hpchub:user=bob,server=a,b"],
)
def test_parse_job_comment_rejects_foreign_comments(comment: str) -> None:
    assert parse_job_comment(comment) is None


@pytest.mark.parametrize(
    ("username", "server_name"), [("", ""), ("bob,x", ""), ("bob", "a=b"), ("bob", "a b"), ("b\nob", "")]
)
def test_job_comment_rejects_unparseable_parts(username: str, server_name: str) -> None:
    with pytest.raises(ScriptError):
        job_comment(username, server_name)
