"""Scripts for the catalogue's entries (venv and Apptainer), a project environment's session and
an environment's build job: golden files in tests/unit/golden (regenerate with HPCHUB_UPDATE_GOLDEN=1
and read the diff)."""

from __future__ import annotations

import os
import re
from decimal import Decimal
from pathlib import Path

import pytest

from hub.envs.build import BuildPlan, build_lines, render_build_script
from spawners.catalog import load_catalogue
from spawners.slurm.launch import LaunchError, launch_for
from spawners.slurm.project_envs import resolve
from spawners.slurm.script import ScriptError, job_comment, render_batch_script
from spawners.slurm.types import JobRequest

pytestmark = pytest.mark.unit

GOLDEN_DIR = Path(__file__).parent / "golden"
REPO_ROOT = Path(__file__).resolve().parents[2]
BUILT = {"demo_venv": "/opt/hpchub/venv", "pytorch_venv": "/sw/envs/pytorch", "pytorch_image": "/sw/images/pytorch.sif"}
UNBUILT = {"demo_venv": "/opt/hpchub/venv", "pytorch_venv": "", "pytorch_image": ""}
ARGS = ("--SingleUserNotebookApp.default_url=/lab",)
EXPORTS = ("JUPYTERHUB_API_TOKEN", "JUPYTERHUB_API_URL", "JUPYTER_PATH", "LANG")
PROJECT_ROOT = "/var/lib/hpchub-demo/projects"


def session_script(environment_id: str, gpus: int = 1, catalogue_variables: dict = BUILT) -> str:
    catalogue = load_catalogue(REPO_ROOT / "images" / "catalog.toml", catalogue_variables)
    gpu_type, partition = ("h200", "gpu") if gpus else (None, "cpu")
    request = JobRequest("vision-lab", partition, gpu_type, gpus, Decimal(1), environment_id)
    environment, default_kernel = resolve(catalogue, request)
    launch = launch_for(
        environment,
        ARGS,
        gpus=gpus,
        job_path="/usr/local/bin:/usr/bin:/bin",
        default_kernel=default_kernel,
        binds=[f"{PROJECT_ROOT}/vision-lab"],
    )
    return render_batch_script(
        request, job_name="hpchub-jupyter", comment=job_comment("bob", ""), output_path="/home/bob/.hpchub-jupyter-%j.log",
        workdir="/home/bob", export_vars=EXPORTS, command=launch.command, prologue=launch.prologue,
    )  # fmt: skip


PLAN = BuildPlan(
    project="vision-lab", account="vision-lab", name="tiny", version=2,
    version_dir=f"{PROJECT_ROOT}/vision-lab/envs/tiny/2",
    wheelhouse="/var/lib/hpchub-demo/wheelhouse", base_python="/usr/bin/python3.11",
    ipykernel_requirement="ipykernel==7.4.0",
)  # fmt: skip

GOLDEN_CASES = {
    "bob_catalogue_default_venv_h200x1": lambda: session_script("default"),
    "bob_catalogue_pytorch_venv_h200x1": lambda: session_script("pytorch"),
    "bob_catalogue_pytorch_apptainer_h200x1": lambda: session_script("pytorch-apptainer"),
    "bob_catalogue_pytorch_apptainer_cpu": lambda: session_script("pytorch-apptainer", gpus=0),
    "bob_project_env_tiny_h200x1": lambda: session_script("project:tiny"),
    "env_build_vision-lab_tiny_v2": lambda: render_build_script(PLAN),
}


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_golden_scripts(name: str) -> None:
    path = GOLDEN_DIR / f"{name}.sbatch"
    rendered = GOLDEN_CASES[name]()
    if os.environ.get("HPCHUB_UPDATE_GOLDEN") == "1":
        path.write_text(rendered, encoding="utf-8")
    assert rendered == path.read_text(encoding="utf-8")


def test_apptainer_uses_nv_only_with_gpus_and_binds_the_project_spaces() -> None:
    with_gpu = session_script("pytorch-apptainer").splitlines()[-1]
    assert with_gpu.startswith(
        "exec apptainer exec --nv --bind /var/lib/hpchub-demo/projects/vision-lab "
        "/sw/images/pytorch.sif batchspawner-singleuser jupyterhub-singleuser"
    )
    assert "--nv" not in session_script("pytorch-apptainer", gpus=0).splitlines()[-1]


def test_an_entry_the_site_has_not_built_is_not_started() -> None:
    with pytest.raises(
        LaunchError,
        match=r"'pytorch' is not available: not built on this site \(its catalogue_variables entry 'pytorch_venv' is not set",
    ):
        session_script("pytorch", catalogue_variables=UNBUILT)


def test_project_environment_runs_the_default_server_with_its_kernel_as_default() -> None:
    last = session_script("project:tiny").splitlines()[-1]
    assert last.startswith(
        "exec /opt/hpchub/venv/bin/batchspawner-singleuser /opt/hpchub/venv/bin/jupyterhub-singleuser"
    )
    assert last.endswith("--MappingKernelManager.default_kernel_name=vision-lab-tiny")


def test_build_job_is_cpu_only_and_never_writes_the_kernel() -> None:
    """The job runs as the builder: it writes only its version; root seals it and writes the kernelspec."""
    script = render_build_script(PLAN)
    assert "#SBATCH --partition=cpu\n" in script and "--gres" not in script and "#SBATCH --export=NONE\n" in script
    assert "#SBATCH --comment=hpchub-env:project=vision-lab,env=tiny,version=2\n" in script
    lines = build_lines(PLAN)
    install = next(i for i, line in enumerate(lines) if " -m pip install " in line)
    ready = next(i for i, line in enumerate(lines) if line.startswith("printf 'ready"))
    assert "--no-index" in lines[install] and "--find-links /var/lib/hpchub-demo/wheelhouse" in lines[install]
    assert install < ready and lines[-1] == "trap - EXIT"
    assert "kernel" not in script.replace("ipykernel", "")
    assert lines.index("trap finish EXIT") < install


@pytest.mark.parametrize("minutes", [0, 20, -15])
def test_build_time_limit_must_be_quarter_hours(minutes: int) -> None:
    from dataclasses import replace

    with pytest.raises(ValueError, match="multiple of 15 minutes"):
        render_build_script(replace(PLAN, time_minutes=minutes))


def test_build_refuses_an_unsafe_directive_value() -> None:
    from dataclasses import replace

    with pytest.raises(ScriptError, match="--output"):
        render_build_script(replace(PLAN, version_dir="/p/has space/2"))


def test_spawn_form_lists_catalogue_and_project_environments() -> None:
    from spawners.slurm.cluster_parsers import parse_sinfo
    from spawners.slurm.form import render_options_form

    cluster = parse_sinfo("gpu*|8:00:00|gpu:h200:4|gpu[01-02]\ncpu|4:00:00|(null)|cpu01\n")
    catalogue = load_catalogue(REPO_ROOT / "images" / "catalog.toml", UNBUILT)
    html = render_options_form(cluster, ["vision-lab"], catalogue, {}, project_environments={"vision-lab": ["tiny"]})

    def option(text: str, value: str) -> str:
        found = re.search(rf'<option value="{re.escape(value)}"[^>]*>[^<]*</option>', text)
        assert found, value
        return found.group(0)

    assert " selected" in option(html, "default")
    assert " disabled" in option(html, "pytorch") and "PyTorch (GPU): " in option(html, "pytorch")
    assert "not built on this site" in option(html, "pytorch")
    assert "catalogue_variables entry" in option(html, "pytorch") and "{pytorch_venv}" not in html  # names the setting
    assert " disabled" in option(html, "pytorch-apptainer")
    assert option(html, "project:tiny").endswith(
        ">vision-lab: tiny (project environment, kernel vision-lab-tiny)</option>"
    )
    chosen = render_options_form(
        cluster,
        ["vision-lab"],
        catalogue,
        {"environment": "project:tiny"},
        project_environments={"vision-lab": ["tiny"]},
    )
    assert " selected" in option(chosen, "project:tiny")
