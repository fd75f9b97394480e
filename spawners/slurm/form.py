"""The spawn form's model: what the form offers, why a choice is unavailable, errors and the
preview of the initial choices, as frozen values (pure; no HTML is written here).

:func:`form_model` builds a :class:`FormModel` from the facts of one request (the cluster,
the user's projects and their budgets, the catalogue, the ready project environments);
the Jinja template ``templates/spawn_form.html`` renders it (:func:`render_form`), through
the hub's own Jinja environment when there is one, so that a site's ``spawn_form.html``
earlier in ``c.JupyterHub.template_paths`` replaces it.

Limits come from the rules of :mod:`.options` (one function per rule): impossible choices
are disabled options whose label says why (a GPU type not in the partition, more GPUs than
a node has, more hours than the partition's MaxTime, a project that cannot pay for the
smallest session, a course's rules). A server-side error is shown under its field
(``aria-describedby``, ``aria-invalid``) and the form keeps what the user chose.

The script (``templates/static/spawn_form.js``, served by the hub) reads the reasons for
every project and partition from a JSON block the server renders (:attr:`FormModel.data_json`)
and only looks them up; it asks ``POST /hub/api/hpchub/v1/preview`` what a choice costs.
Without JavaScript the form still works: the server renders the preview of the initial
choices and validates every post again.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

import jinja2

from spawners.catalog import Catalogue
from spawners.slurm.options import (
    ALLOWED_KEYS,
    HOURS_STEP,
    environment_choices,
    gpu_count_range,
    offered_gpu_types,
    partition_max_hours,
)
from spawners.slurm.types import ClusterInfo, PartitionInfo

# The hours list stops here for partitions without a MaxTime (the API accepts more).
FORM_MAX_HOURS_WITHOUT_LIMIT = Decimal(24)
BUDGET_FIELD = "budget"  # a budget refusal is shown under GPUs and hours
TEMPLATE_NAME = "spawn_form.html"
SCRIPT_NAME = "spawn_form.js"  # in templates/static/, served at {hub}/hpchub/static/
OPTION_KEYS: tuple[str, ...] = ALLOWED_KEYS  # the form's field names are the spawn options


@dataclass(frozen=True)
class ProjectBudget:
    """What one of the user's projects has left (GPU-hours, as shown) and whether it can
    pay for the smallest session; ``reason`` says why not (the option is then disabled)."""

    note: str  # e.g. "96.0 GPU-h left; your cap 16.0"
    reason: str = ""  # e.g. "0.1 GPU-h left, less than the smallest session (1 x a100 x 0.25 h = 0.125 GPU-h)"
    course: CourseLimits | None = None  # the course's rules when the user is one of its students


@dataclass(frozen=True)
class CourseLimits:
    """A course's rules that bind a student's choices (the ledger enforces them again)."""

    gpu_types: tuple[str, ...] = ()  # empty: any
    max_gpus: int | None = None
    max_quarters: int | None = None
    lab_hours_only: bool = False  # sessions start only during the course's lab hours (the project's reason says)


@dataclass(frozen=True)
class FormError:
    """A refused post: the field it names (a spawn option, or ``budget``) and the message."""

    field: str
    message: str


@dataclass(frozen=True)
class FormPreview:
    """The preview of the initial choices, as ``POST /preview`` answers it (``preview_json``)."""

    answer: Mapping = field(default_factory=dict)
    error: str = ""  # the preview's own 400 (e.g. "hours: ..."), shown instead


def plain_hours(value: object) -> str:
    """``1.0`` -> ``"1"``, ``"0.50"`` -> ``"0.5"``; anything that is no number is returned as text."""
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    if not number.is_finite():
        return str(value)
    return format(number.normalize(), "f")


def partition_max_quarters(partition: PartitionInfo) -> int:
    """Whole quarter hours the form offers on ``partition``: the hours rule's limit, at most the
    form's list length for a partition without a MaxTime."""
    max_hours, _source = partition_max_hours(partition)
    if partition.max_minutes is None:
        max_hours = min(max_hours, FORM_MAX_HOURS_WITHOUT_LIMIT)
    return int(max_hours / HOURS_STEP)


def _hours_text(quarters: int) -> str:
    return plain_hours(Decimal(quarters) * HOURS_STEP)


def _unavailable(catalogue: Catalogue) -> dict[str, str]:
    return {env.id: env.unavailable_reason for env in catalogue if not env.available}


# --- why a choice is impossible (the rules of .options, in the form's words) ---------------------------


def gpu_type_reason(gpu_type: str, partition: PartitionInfo, course: CourseLimits | None = None) -> str:
    offered = offered_gpu_types(partition)
    if gpu_type == "":
        return "" if not offered else f"partition {partition.name} has GPUs"
    if gpu_type not in offered:
        return f"not in partition {partition.name}"
    if course is not None and course.gpu_types and gpu_type not in course.gpu_types:
        return f"course rule: {' or '.join(course.gpu_types)} only"
    return ""


def gpus_reason(gpus: int, gpu_type: str, partition: PartitionInfo, course: CourseLimits | None = None) -> str:
    allowed = gpu_count_range(partition, gpu_type or None)
    if gpus not in allowed:
        if not offered_gpu_types(partition):
            return f"partition {partition.name} has no GPUs"
        if gpus == 0:
            return "only on a partition without GPUs"
        if gpu_type in offered_gpu_types(partition):
            return f"a {partition.name} node has {allowed[-1]} {gpu_type}"
    if course is not None and course.max_gpus is not None and gpus > course.max_gpus:
        return f"course rule: at most {course.max_gpus}"
    return ""


def hours_reason(quarters: int, partition: PartitionInfo, course: CourseLimits | None = None) -> str:
    most = partition_max_quarters(partition)
    if quarters > most:
        if partition.max_minutes is None:
            return f"over the form's {FORM_MAX_HOURS_WITHOUT_LIMIT} h"
        return f"over the {_hours_text(most)} h MaxTime of {partition.name}"
    if course is not None and course.max_quarters is not None and quarters > course.max_quarters:
        return f"course rule: at most {_hours_text(course.max_quarters)} h"
    return ""


# --- the model ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OptionModel:
    """One choice of a select: its value, its label, and why it cannot be chosen ('' if it can)."""

    value: str
    label: str
    selected: bool = False
    reason: str = ""
    base: str | None = None  # the label the script puts the reason after (default: label)

    @property
    def shown(self) -> str:
        return f"{self.label} ({self.reason})" if self.reason else self.label

    @property
    def data_label(self) -> str:
        return self.base if self.base is not None else self.label


@dataclass(frozen=True)
class FieldModel:
    """One labelled select: a spawn option, its choices, its hint, and its error if the post was refused."""

    key: str
    label: str
    hint: str
    options: tuple[OptionModel, ...]
    error: str = ""
    budget_error: bool = False  # described by the budget refusal too

    @property
    def described_by(self) -> str:
        ids = [f"hpchub-{self.key}-hint"]
        if self.error:
            ids.append(f"hpchub-{self.key}-error")
        if self.budget_error:
            ids.append(f"hpchub-{BUDGET_FIELD}-error")
        return " ".join(ids)


@dataclass(frozen=True)
class OfferModel:
    gpu_type: str
    gpus: int
    hours: str
    text: str


@dataclass(frozen=True)
class PreviewModel:
    """The preview region's sentences (filled by the server for the initial choices)."""

    summary: str = ""
    refusal: str = ""
    offer: str = ""
    left_now: str = ""
    offers: tuple[OfferModel, ...] = ()

    @property
    def hidden(self) -> bool:
        return not (self.summary or self.refusal)


@dataclass(frozen=True)
class Notice:
    """A sentence shown instead of the form: ``text``, then ``code`` (as code) and ``after``."""

    text: str
    level: str = "warning"  # a Bootstrap alert level
    code: str = ""
    after: str = ""
    id: str = "hpchub-form-message"


def no_cluster_account_notice(user: str) -> Notice:
    return Notice("Your login worked, but the cluster account ", code=user,
                  after=" does not exist yet, so no server can start.", id="hpchub-no-cluster-account")  # fmt: skip


def slurm_not_answering_notice(summary: str) -> Notice:
    return Notice(f"Slurm is not answering: {summary}", level="danger")


@dataclass(frozen=True)
class FormModel:
    """Everything the template shows. ``notice`` alone (and no fields) when no form can be offered."""

    fields: tuple[FieldModel, ...] = ()
    notice: Notice | None = None  # e.g. no project to charge
    other_error: str = ""  # a refusal that names no field of the form
    budget_error: str = ""
    preview: PreviewModel = field(default_factory=PreviewModel)
    preview_url: str = ""
    script_url: str = ""
    data: Mapping = field(default_factory=dict)  # the allowed choices and reasons, for the script
    keys: tuple[str, ...] = OPTION_KEYS

    @property
    def data_json(self) -> str:
        """``data`` as JSON safe inside ``<script type="application/json">`` (no ``<``, ``>`` or ``&``)."""
        text = json.dumps(self.data, sort_keys=True)
        return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _chosen(previous: Mapping, key: str) -> str:
    value = previous.get(key)
    return "" if value is None else str(value)


@dataclass(frozen=True)
class Choices:
    """What the form shows selected: the user's choices where possible, else the nearest
    allowed value (the script moves a selection the same way when a limit changes)."""

    project: str
    partition: PartitionInfo
    gpu_type: str  # "" on a partition without GPUs
    gpus: str
    hours: str
    environment: str
    gpus_as_sent: bool = False  # the posted value is not in the list: shown as sent
    hours_as_sent: bool = False

    def to_options(self) -> dict:
        """The spawn options these choices post (what the preview of the initial choices asks)."""
        options = {"project": self.project, "partition": self.partition.name, "gpus": self.gpus,
                   "hours": self.hours, "environment": self.environment}  # fmt: skip
        if self.gpu_type:
            options["gpu_type"] = self.gpu_type
        return options


def _gpu_counts(cluster: ClusterInfo) -> range:
    return range(max((n for p in cluster.partitions.values() for n in p.gpus_per_node.values()), default=0) + 1)


def _quarters(cluster: ClusterInfo) -> range:
    return range(1, max(partition_max_quarters(p) for p in cluster.partitions.values()) + 1)


def form_choices(
    cluster: ClusterInfo,
    projects: Sequence[str],
    catalogue: Catalogue,
    previous: Mapping,
    budgets: Mapping[str, ProjectBudget] | None = None,
    project_environments: Mapping[str, Sequence[str]] | None = None,
) -> Choices:
    """The selected values for ``previous`` (needs at least one project and one partition)."""
    budgets = budgets or {}
    partitions = list(cluster.partitions.values())
    partition = cluster.partitions.get(_chosen(previous, "partition")) or cluster.default_partition or partitions[0]
    project = _chosen(previous, "project")
    usable = [p for p in projects if not (p in budgets and budgets[p].reason)]
    if project not in usable:
        project = project if project in projects and not usable else (usable or list(projects))[0]
    course = budgets[project].course if project in budgets else None
    offered = [t for t in offered_gpu_types(partition) if not gpu_type_reason(t, partition, course)]
    gpu_type = _chosen(previous, "gpu_type")
    if gpu_type_reason(gpu_type, partition, course):
        gpu_type = offered[0] if offered else ""
    gpus = _chosen(previous, "gpus") or ("1" if offered else "0")
    counts = _gpu_counts(cluster)
    gpus_as_sent = gpus not in {str(n) for n in counts}
    if not gpus_as_sent and gpus_reason(int(gpus), gpu_type, partition, course):
        gpus = _nearest_allowed([str(n) for n in counts if not gpus_reason(n, gpu_type, partition, course)], gpus)
    hours = plain_hours(_chosen(previous, "hours") or "1")
    quarters = _quarters(cluster)
    hours_as_sent = hours not in {_hours_text(q) for q in quarters}
    if not hours_as_sent and hours_reason(int(Decimal(hours) / HOURS_STEP), partition, course):
        hours = _nearest_allowed([_hours_text(q) for q in quarters if not hours_reason(q, partition, course)], hours)
    environment = _chosen(previous, "environment")
    usable, ready = environment_choices(catalogue.ids(), _unavailable(catalogue), project, project_environments or {})
    allowed = {*usable, *ready}
    if environment not in allowed:
        environment = catalogue.default.id
    return Choices(project, partition, gpu_type, gpus, hours, environment, gpus_as_sent, hours_as_sent)


def _gpu_type_values(cluster: ClusterInfo) -> list[str]:
    return ["", *sorted({t for p in cluster.partitions.values() for t in offered_gpu_types(p)})]


def choice_reasons(cluster: ClusterInfo, projects: Sequence[str], budgets: Mapping[str, ProjectBudget]) -> dict:
    """Per project and partition, why each GPU type, GPU count (per type) and hours value cannot be
    chosen ('' if it can): what the script looks up when a choice changes."""
    counts, quarters = _gpu_counts(cluster), _quarters(cluster)
    reasons: dict = {}
    for project in projects:
        course = budgets[project].course if project in budgets else None
        reasons[project] = {
            name: {
                "gpu_type": {t: gpu_type_reason(t, partition, course) for t in _gpu_type_values(cluster)},
                "gpus": {t: {str(n): gpus_reason(n, t, partition, course) for n in counts}
                         for t in _gpu_type_values(cluster)},
                "hours": {_hours_text(q): hours_reason(q, partition, course) for q in quarters},
            }
            for name, partition in cluster.partitions.items()
        }  # fmt: skip
    return reasons


def _preview_model(preview: FormPreview | None) -> PreviewModel:
    if preview is None:
        return PreviewModel()
    if preview.error:
        return PreviewModel(refusal=preview.error)
    answer = preview.answer
    if not answer:
        return PreviewModel()
    left_now = str(answer.get("left_now", ""))
    if answer.get("allowed"):
        return PreviewModel(summary=str(answer.get("summary", "")), left_now=left_now)
    offers = tuple(OfferModel(str(o["gpu_type"]), int(o["gpus"]), plain_hours(o["hours"]), str(o["text"]))
                   for o in answer.get("offers") or [])  # fmt: skip
    return PreviewModel(refusal=str(answer.get("message", "")), offer=str(answer.get("offer_text", "")),
                        left_now=left_now, offers=offers)  # fmt: skip


def form_model(
    cluster: ClusterInfo,
    projects: Sequence[str],
    catalogue: Catalogue,
    previous: Mapping,
    budgets: Mapping[str, ProjectBudget] | None = None,
    *,
    error: FormError | None = None,
    preview: FormPreview | None = None,
    preview_url: str = "",
    script_url: str = "",
    project_environments: Mapping[str, Sequence[str]] | None = None,
) -> FormModel:
    """The form. ``previous``: what the user chose (a refused post) or the last options;
    ``budgets``: per project what is left; ``error``: shown under its field; ``preview``:
    the preview of the initial choices; ``preview_url``: ``POST /preview`` for the script;
    ``project_environments``: per project its ready environments (``project:NAME`` choices,
    after the catalogue's entries; entries the site has not built are disabled with why)."""
    if not projects:
        return FormModel(notice=Notice("You have no project (Slurm account) to charge GPU-hours to. "
                                       "Ask your PI or the centre to add you to one."))  # fmt: skip
    if not cluster.partitions:
        return FormModel(notice=Notice("The cluster offers no partition (sinfo listed none).", level="danger"))
    budgets = budgets or {}
    chosen = form_choices(cluster, projects, catalogue, previous, budgets, project_environments)
    partition = chosen.partition
    course = budgets[chosen.project].course if chosen.project in budgets else None

    project_options = tuple(
        OptionModel(p, f"{p}: {budgets[p].note}" if p in budgets else p, p == chosen.project,
                    budgets[p].reason if p in budgets else "")
        for p in projects
    )  # fmt: skip
    partition_options = tuple(
        OptionModel(p.name, _partition_label(p), p.name == partition.name) for p in cluster.partitions.values()
    )
    type_options = tuple(
        OptionModel(t, t or "none (CPU only)", t == chosen.gpu_type, gpu_type_reason(t, partition, course if t else None))
        for t in _gpu_type_values(cluster)
    )  # fmt: skip
    gpu_options: tuple[OptionModel, ...] = ()
    if chosen.gpus_as_sent:
        gpu_options += (OptionModel(chosen.gpus, f"{chosen.gpus} (as sent; not allowed)", True,
                                    base=f"{chosen.gpus} (as sent)"),)  # fmt: skip
    gpu_options += tuple(
        OptionModel(str(n), str(n), str(n) == chosen.gpus, gpus_reason(n, chosen.gpu_type, partition, course))
        for n in _gpu_counts(cluster)
    )
    hour_options: tuple[OptionModel, ...] = ()
    if chosen.hours_as_sent:
        hour_options += (OptionModel(chosen.hours, f"{chosen.hours} h (as sent; not allowed)", True,
                                     base=f"{chosen.hours} h (as sent)"),)  # fmt: skip
    hour_options += tuple(
        OptionModel(_hours_text(q), f"{_hours_text(q)} h", _hours_text(q) == chosen.hours,
                    hours_reason(q, partition, course))
        for q in _quarters(cluster)
    )  # fmt: skip
    environment_options = tuple(
        OptionModel(env.id, f"{env.name}: {env.description}", env.id == chosen.environment, env.unavailable_reason)
        for env in catalogue
    ) + tuple(
        OptionModel(f"project:{name}", f"{project}: {name} (project environment, kernel {project}-{name})",
                    f"project:{name}" == chosen.environment)
        for project in projects
        for name in (project_environments or {}).get(project, ())
    )  # fmt: skip

    budget_error = error is not None and error.field == BUDGET_FIELD

    def message_for(key: str) -> str:
        return error.message if error is not None and error.field == key else ""

    by_key = {f.key: f for f in (
        FieldModel("project", "Project (whose GPU-hour budget is charged)",
                   "Only your projects; each with the GPU-hours it has left (and your cap, if you have one).",
                   project_options, message_for("project")),
        FieldModel("partition", "Partition", "Which nodes, and the longest session there (MaxTime).",
                   partition_options, message_for("partition")),
        FieldModel("gpu_type", "GPU type", "Types the chosen partition does not have are disabled.",
                   type_options, message_for("gpu_type")),
        FieldModel("gpus", "GPUs", "At most as many as one node of that type has.", gpu_options,
                   message_for("gpus"), budget_error),
        FieldModel("hours", "Hours",
                   "Quarter hours, up to the partition's MaxTime. The budget holds GPUs x hours x the type's weight "
                   "until the session ends; you pay only for the time it runs.", hour_options,
                   message_for("hours"), budget_error),
        FieldModel("environment", "Environment", "The notebook environment the job starts.",
                   environment_options, message_for("environment")),
    )}  # fmt: skip
    fields = tuple(by_key[key] for key in OPTION_KEYS)
    other_error = ""
    if error is not None and error.field not in OPTION_KEYS and error.field != BUDGET_FIELD:
        other_error = error.message
    return FormModel(
        fields=fields,
        other_error=other_error,
        budget_error=error.message if budget_error and error is not None else "",
        preview=_preview_model(preview),
        preview_url=preview_url,
        script_url=script_url,
        data={"keys": list(OPTION_KEYS), "reasons": choice_reasons(cluster, projects, budgets)},
    )


def _nearest_allowed(allowed: Sequence[str], current: str) -> str:
    """The largest allowed number not above ``current``, else the smallest allowed (the script does the same)."""
    below = [value for value in allowed if Decimal(value) <= Decimal(current)]
    if below:
        return max(below, key=Decimal)
    return min(allowed, key=Decimal) if allowed else current


def _partition_label(partition: PartitionInfo) -> str:
    hours = f"{_hours_text(partition_max_quarters(partition))} h max" if partition.max_minutes else "no time limit"
    gpus = ", ".join(f"{n} x {t}/node" for t, n in sorted(partition.gpus_per_node.items())) or "no GPUs"
    return f"{partition.name} ({gpus}; {hours})"


# --- rendering ------------------------------------------------------------------------------------------


def template_dirs() -> list[Path]:
    """Where hpchub's own templates are: the source tree's ``templates/``, or the wheel's
    ``share/hpchub/templates``."""
    here = Path(__file__).resolve().parents[2] / "templates"
    installed = Path(sys.prefix) / "share" / "hpchub" / "templates"
    return [path for path in (here, installed) if (path / TEMPLATE_NAME).exists()]


def _own_environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader([str(p) for p in template_dirs()]), autoescape=True)


def render_form(model: FormModel, environment: jinja2.Environment | None = None) -> str:
    """The form's HTML from ``spawn_form.html`` (hpchub's own environment unless one is given)."""
    return (environment or _own_environment()).get_template(TEMPLATE_NAME).render(form=model)


async def render_form_async(model: FormModel, environment: jinja2.Environment) -> str:
    """The same through an async Jinja environment (JupyterHub's ``jinja2_env``)."""
    template = environment.get_template(TEMPLATE_NAME)
    if environment.is_async:
        return await template.render_async(form=model)
    return template.render(form=model)


def render_options_form(
    cluster: ClusterInfo,
    projects: Sequence[str],
    catalogue: Catalogue,
    previous: Mapping,
    budgets: Mapping[str, ProjectBudget] | None = None,
    **kwargs,
) -> str:
    """:func:`form_model` rendered by hpchub's own ``spawn_form.html`` (the same keywords)."""
    return render_form(form_model(cluster, projects, catalogue, previous, budgets, **kwargs))
