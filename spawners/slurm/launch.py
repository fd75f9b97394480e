"""What a notebook job runs, per catalogue entry kind (pure: builds argv and shell lines).

* ``venv``: ``VENV/bin/batchspawner-singleuser VENV/bin/jupyterhub-singleuser ARGS`` with
  ``PATH`` starting at ``VENV/bin``.
* ``apptainer``: ``apptainer exec [--nv] [--bind DIR ...] IMAGE batchspawner-singleuser
  jupyterhub-singleuser ARGS``; ``--nv`` (the host's NVIDIA driver) when the job has GPUs;
  the project spaces are bound so their kernels and shared/ are seen inside.
* ``project:NAME``: the server runs in the catalogue's default entry (it holds Jupyter),
  and the project environment's kernel ``P-NAME`` becomes the default kernel.

``JUPYTER_PATH`` lists the user's project spaces (their ``kernels/`` hold ``P-NAME``);
only members get it, and the spaces' group permission stops everyone else anyway.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from spawners.catalog import Environment


class LaunchError(ValueError):
    """The chosen environment cannot be started on this site (the message says why)."""


@dataclass(frozen=True)
class Launch:
    command: tuple[str, ...]
    prologue: tuple[str, ...]


def launch_for(
    environment: Environment,
    singleuser_args: Sequence[str],
    *,
    gpus: int,
    job_path: str,
    default_kernel: str | None = None,
    apptainer: str = "apptainer",
    binds: Sequence[str] = (),
) -> Launch:
    """The job's command and prologue for ``environment`` (a catalogue entry)."""
    if not environment.available:
        raise LaunchError(f"environment {environment.id!r} is not available: {environment.unavailable_reason}")
    args = list(singleuser_args)
    if default_kernel:
        args.append(f"--MappingKernelManager.default_kernel_name={default_kernel}")
    if environment.kind == "venv" and environment.path:
        bin_dir = os.path.join(environment.path, "bin")
        command = (
            os.path.join(bin_dir, "batchspawner-singleuser"), os.path.join(bin_dir, "jupyterhub-singleuser"), *args,
        )  # fmt: skip
        return Launch(command, (f"export PATH={shlex.quote(bin_dir)}:{shlex.quote(job_path)}",))
    if environment.kind == "apptainer" and environment.image:
        options = ["--nv"] if gpus > 0 else []
        for directory in binds:
            options += ["--bind", directory]
        command = (apptainer, "exec", *options, environment.image, "batchspawner-singleuser",
                   "jupyterhub-singleuser", *args)  # fmt: skip
        return Launch(command, (f"export PATH={shlex.quote(job_path)}",))
    raise LaunchError(f"environment {environment.id!r} ({environment.kind}) cannot be started on this site")
