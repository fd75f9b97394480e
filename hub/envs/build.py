"""The build job of one environment version (pure: renders text, runs nothing).

The job runs as the requesting PI or manager (``sudo -u USER sbatch``, the portal's one
privilege path) on the project's Slurm account in the build partition (``cpu``, no GPUs:
billed 0 GPU-hours). It creates a venv in ``envs/NAME/VERSION``, installs the spec and
ipykernel from the site's wheelhouse only (``pip --no-index --find-links``: compute
nodes are often offline), checks that Python starts and writes ``status`` = ``ready`` as
its last step. Any failure writes ``failed`` instead (an EXIT trap). The job never touches
``kernels/``: once it has ended, root seals the version (:mod:`.seal`: the builder keeps
nothing in it) and writes the kernelspec, so the default version changes only then.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from decimal import Decimal

from hub.envs.space import LOG_FILE, SPEC_FILE, STATUS_FILE
from spawners.slurm.script import render_batch_script
from spawners.slurm.types import JobRequest

BUILD_COMMENT_PREFIX = "hpchub-env:"


@dataclass(frozen=True)
class BuildPlan:
    """Everything one build needs; paths absolute, values validated by the caller."""

    project: str
    account: str
    name: str
    version: int
    version_dir: str
    wheelhouse: str
    base_python: str
    ipykernel_requirement: str  # e.g. "ipykernel==7.4.0"
    partition: str = "cpu"
    time_minutes: int = 30
    job_name: str = "hpchub-env-build"


def build_comment(plan: BuildPlan) -> str:
    return f"{BUILD_COMMENT_PREFIX}project={plan.project},env={plan.name},version={plan.version}"


def _q(value: object) -> str:
    return shlex.quote(str(value))


def build_lines(plan: BuildPlan) -> list[str]:
    """The shell lines of the build (every value quoted)."""
    prefix = plan.version_dir
    python = f"{prefix}/bin/python"
    status, status_tmp = f"{prefix}/{STATUS_FILE}", f"{prefix}/{STATUS_FILE}.tmp"
    return [
        "umask 027",
        "export PATH=/usr/local/bin:/usr/bin:/bin PYTHONNOUSERSITE=1 PIP_CONFIG_FILE=/dev/null "
        "PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_NO_INPUT=1 " + f"HOME={_q(prefix)}",
        # On any failure: mark the version failed; the kernelspec (the default version) is left alone.
        f"finish() {{ code=$?; if [ \"$code\" -ne 0 ]; then printf 'failed\\n' > {_q(status_tmp)} && "
        f'mv -f {_q(status_tmp)} {_q(status)}; echo "hpchub: build failed (exit $code)"; fi; }}',
        "trap finish EXIT",
        f'echo {_q(f"hpchub: building {plan.project}/{plan.name} version {plan.version} on")} "$(hostname)"',
        f"{_q(plan.base_python)} -m venv {_q(prefix)}",
        f"{_q(python)} -m pip install --no-index --only-binary=:all: --find-links {_q(plan.wheelhouse)} "
        f"--requirement {_q(f'{prefix}/{SPEC_FILE}')} {_q(plan.ipykernel_requirement)}",
        f'{_q(python)} -c \'import ipykernel, sys; print("hpchub: python", sys.version.split()[0], "ok")\'',
        f"chmod -R a-w {_q(prefix)}/bin {_q(prefix)}/lib {_q(prefix)}/pyvenv.cfg",
        f"printf 'ready\\n' > {_q(status_tmp)}",
        f"mv -f {_q(status_tmp)} {_q(status)}",
        "trap - EXIT",
    ]


def render_build_script(plan: BuildPlan) -> str:
    """The sbatch script of the build (``#SBATCH`` values checked by :mod:`spawners.slurm.script`)."""
    if plan.time_minutes <= 0 or plan.time_minutes % 15:
        raise ValueError(f"build time limit: a positive multiple of 15 minutes; got {plan.time_minutes}")
    request = JobRequest(
        project=plan.project, partition=plan.partition, gpu_type=None, gpus=0,
        hours=Decimal(plan.time_minutes) / 60, environment=f"project:{plan.name}", account=plan.account,
    )  # fmt: skip
    return render_batch_script(
        request,
        job_name=plan.job_name,
        comment=build_comment(plan),
        output_path=f"{plan.version_dir}/{LOG_FILE}",
        workdir=plan.version_dir,
        export_vars=(),
        command=["/bin/echo", f"hpchub: {plan.project}/{plan.name} version {plan.version} is ready"],
        prologue=build_lines(plan),
    )
