"""The spawn form (pure HTML rendering; every value escaped).

A plain, labelled form whose field names are the spawn options of the
contract. The server validates everything again: the form only helps.
"""

from __future__ import annotations

from html import escape

from spawners.catalog import Catalogue
from spawners.slurm.types import ClusterInfo


def _options(values: list[tuple[str, str]], selected: str | None, disabled: frozenset[str] = frozenset()) -> str:
    return "".join(
        f'<option value="{escape(value)}"{" selected" if value == selected and value not in disabled else ""}'
        f'{" disabled" if value in disabled else ""}>{escape(label)}</option>'
        for value, label in values
    )


def render_options_form(
    cluster: ClusterInfo,
    projects: list[str],
    catalogue: Catalogue,
    previous: dict,
    project_notes: dict[str, str] | None = None,
    project_environments: dict[str, list[str]] | None = None,
) -> str:
    """The form; ``project_notes`` adds what each project has left, e.g. ``96.0 GPU-h left; your cap 16.0``;
    ``project_environments`` (project -> ready environments) adds ``project:NAME`` choices after the
    catalogue's entries (entries the site has not built are shown disabled with the reason)."""
    if not projects:
        return (
            '<p class="alert alert-warning">You have no project (Slurm account) to charge GPU-hours to. '
            "Ask your PI or the centre to add you to one.</p>"
        )
    partitions = list(cluster.partitions.values())
    default_partition = cluster.default_partition or (partitions[0] if partitions else None)
    chosen_partition = previous.get("partition") or (default_partition.name if default_partition else "")
    gpu_types = sorted({t for p in partitions for t in p.gpus_per_node})
    partition_labels = []
    for partition in partitions:
        hours = f"{partition.max_minutes / 60:g} h max" if partition.max_minutes else "no time limit"
        gpus = ", ".join(f"{n} x {t}/node" for t, n in sorted(partition.gpus_per_node.items())) or "no GPUs"
        partition_labels.append((partition.name, f"{partition.name} ({gpus}; {hours})"))
    environments = [
        (env.id, f"{env.name}: {env.description}" + ("" if env.available else f" [unavailable: {env.unavailable_reason}]"))
        for env in catalogue
    ]
    unavailable = frozenset(env.id for env in catalogue if not env.available)
    for project in projects:
        for name in (project_environments or {}).get(project, []):
            environments.append((f"project:{name}", f"{project}: {name} (project environment, kernel {project}-{name})"))
    gpus = previous.get("gpus", 1)
    hours = previous.get("hours", 1)
    return f"""
<div class="hpchub-spawn-form">
  <div class="form-group mb-3">
    <label for="hpchub-project" class="form-label">Project (whose GPU-hour budget is charged)</label>
    <select id="hpchub-project" name="project" class="form-select">{_options([(p, f"{p} ({project_notes[p]})" if project_notes and p in project_notes else p) for p in projects], previous.get("project"))}</select>
  </div>
  <div class="form-group mb-3">
    <label for="hpchub-partition" class="form-label">Partition</label>
    <select id="hpchub-partition" name="partition" class="form-select">{_options(partition_labels, chosen_partition)}</select>
  </div>
  <div class="form-group mb-3">
    <label for="hpchub-gpu-type" class="form-label">GPU type</label>
    <select id="hpchub-gpu-type" name="gpu_type" class="form-select">{_options([("", "none (CPU partition)")] + [(t, t) for t in gpu_types], previous.get("gpu_type") or (gpu_types[0] if gpu_types else ""))}</select>
  </div>
  <div class="form-group mb-3">
    <label for="hpchub-gpus" class="form-label">GPUs</label>
    <input id="hpchub-gpus" name="gpus" type="number" min="0" max="64" step="1" value="{escape(str(gpus))}" class="form-control">
  </div>
  <div class="form-group mb-3">
    <label for="hpchub-hours" class="form-label">Hours (multiples of 0.25)</label>
    <input id="hpchub-hours" name="hours" type="number" min="0.25" step="0.25" value="{escape(str(hours))}" class="form-control">
  </div>
  <div class="form-group mb-3">
    <label for="hpchub-environment" class="form-label">Environment</label>
    <select id="hpchub-environment" name="environment" class="form-select">{_options(environments, previous.get("environment") or catalogue.default.id, unavailable)}</select>
  </div>
  <p class="form-text hpchub-meter-hint">In a notebook: <code>from hpchub_notebook import BudgetMeter; BudgetMeter()</code> shows this session's cost, what the project has left and the walltime left.</p>
</div>
"""
