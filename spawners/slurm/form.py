"""The spawn form (pure HTML rendering; every value escaped).

A plain, labelled form whose field names are the documented spawn options. Limits
come from the cluster (the cached ``sinfo``) and from the budget: impossible choices are
rendered as disabled options whose label says why (a GPU type not in the partition, more
GPUs than a node has, more hours than the partition's MaxTime, a project that cannot pay
for the smallest session). A server-side validation error is shown under its field
(``aria-describedby``, ``aria-invalid``) and the form keeps what the user chose.

A small script (no library) keeps the disabled choices in step with the partition and GPU
type and asks ``POST /hub/api/hpchub/v1/preview`` (with the page's XSRF token, debounced)
what the request costs. Without JavaScript the form still works: the server renders the
preview of the initial choices and validates every post again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from html import escape

from spawners.catalog import Catalogue
from spawners.slurm.options import ALLOWED_KEYS, HOURS_STEP, UNLIMITED_PARTITION_MAX_HOURS
from spawners.slurm.types import ClusterInfo, PartitionInfo

# The hours list stops here for partitions without a MaxTime (the API accepts more).
FORM_MAX_HOURS_WITHOUT_LIMIT = Decimal(24)
BUDGET_FIELD = "budget"  # a budget refusal is shown under GPUs and hours


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

    def to_json(self) -> dict:
        return {"gpu_types": list(self.gpu_types), "max_gpus": self.max_gpus, "max_quarters": self.max_quarters}


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
    text = format(number.normalize(), "f")
    return text


def partition_max_quarters(partition: PartitionInfo) -> int:
    """Whole quarter hours the partition allows (MaxTime), or the form's list length without one."""
    if partition.max_minutes is None:
        return int(min(UNLIMITED_PARTITION_MAX_HOURS, FORM_MAX_HOURS_WITHOUT_LIMIT) / HOURS_STEP)
    return partition.max_minutes // 15


def _hours_text(quarters: int) -> str:
    return plain_hours(Decimal(quarters) * HOURS_STEP)


def cluster_json(cluster: ClusterInfo, budgets: Mapping[str, ProjectBudget] | None = None) -> dict:
    """What the script needs to disable choices: per partition its GPUs per node and MaxTime,
    and per course project (the user a student there) the course's limits."""
    return {
        "partitions": {
            name: {"gpus": dict(sorted(p.gpus_per_node.items())), "max_quarters": partition_max_quarters(p)}
            for name, p in cluster.partitions.items()
        },
        "courses": {name: b.course.to_json() for name, b in (budgets or {}).items() if b.course is not None},
    }


# --- why a choice is impossible (the script mirrors these three rules) ---------------------------------


def gpu_type_reason(gpu_type: str, partition: PartitionInfo, course: CourseLimits | None = None) -> str:
    if gpu_type == "":
        return "" if not partition.gpus_per_node else f"partition {partition.name} has GPUs"
    if partition.gpus_per_node.get(gpu_type, 0) <= 0:
        return f"not in partition {partition.name}"
    if course is not None and course.gpu_types and gpu_type not in course.gpu_types:
        return f"course rule: {' or '.join(course.gpu_types)} only"
    return ""


def gpus_reason(gpus: int, gpu_type: str, partition: PartitionInfo, course: CourseLimits | None = None) -> str:
    if not partition.gpus_per_node:
        return "" if gpus == 0 else f"partition {partition.name} has no GPUs"
    if gpus == 0:
        return "only on a partition without GPUs"
    most = partition.gpus_per_node.get(gpu_type, 0)
    if most and gpus > most:
        return f"a {partition.name} node has {most} {gpu_type}"
    if course is not None and course.max_gpus is not None and gpus > course.max_gpus:
        return f"course rule: at most {course.max_gpus}"
    return ""


def hours_reason(quarters: int, partition: PartitionInfo, course: CourseLimits | None = None) -> str:
    if quarters > partition_max_quarters(partition):
        if partition.max_minutes is None:
            return f"over the form's {FORM_MAX_HOURS_WITHOUT_LIMIT} h"
        return f"over the {_hours_text(partition_max_quarters(partition))} h MaxTime of {partition.name}"
    if course is not None and course.max_quarters is not None and quarters > course.max_quarters:
        return f"course rule: at most {_hours_text(course.max_quarters)} h"
    return ""


# --- rendering ---------------------------------------------------------------------------------------------


def _option(value: str, label: str, *, selected: bool, reason: str = "", base: str | None = None) -> str:
    shown = f"{label} ({reason})" if reason else label
    attributes = f' value="{escape(value)}" data-label="{escape(base if base is not None else label)}"'
    if selected:
        attributes += " selected"
    if reason:
        attributes += " disabled"
    return f"<option{attributes}>{escape(shown)}</option>"


def _field(
    key: str, label: str, options: str, hint: str, error: FormError | None, *, budget_error: bool = False
) -> str:
    """A labelled select with its hint and, if the post was refused for it, its error."""
    invalid = error is not None and error.field == key
    described_by = [f"hpchub-{key}-hint"]
    feedback = ""
    if invalid:
        assert error is not None
        described_by.append(f"hpchub-{key}-error")
        feedback = f'<div id="hpchub-{key}-error" class="invalid-feedback d-block">{escape(error.message)}</div>'
    if budget_error:
        described_by.append(f"hpchub-{BUDGET_FIELD}-error")
    attributes = f'aria-describedby="{" ".join(described_by)}"' + (' aria-invalid="true"' if invalid else "")
    css = "form-select is-invalid" if invalid else "form-select"
    return f"""
  <div class="form-group mb-3 hpchub-field" id="hpchub-{key}-group">
    <label for="hpchub-{key}" class="form-label">{escape(label)}</label>
    <select id="hpchub-{key}" name="{key}" class="{css}" {attributes}>{options}</select>
    <div id="hpchub-{key}-hint" class="form-text">{escape(hint)}</div>{feedback}
  </div>"""


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
    offered = sorted(t for t, n in partition.gpus_per_node.items() if n > 0 and not gpu_type_reason(t, partition, course))
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
    allowed = {env.id for env in catalogue if env.available}
    allowed |= {f"project:{name}" for name in (project_environments or {}).get(project, ())}
    if environment not in allowed:
        environment = catalogue.default.id
    return Choices(project, partition, gpu_type, gpus, hours, environment, gpus_as_sent, hours_as_sent)


def render_options_form(
    cluster: ClusterInfo,
    projects: Sequence[str],
    catalogue: Catalogue,
    previous: Mapping,
    budgets: Mapping[str, ProjectBudget] | None = None,
    *,
    error: FormError | None = None,
    preview: FormPreview | None = None,
    preview_url: str = "",
    project_environments: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """The form. ``previous``: what the user chose (a refused post) or the last options;
    ``budgets``: per project what is left; ``error``: shown under its field; ``preview``:
    the preview of the initial choices; ``preview_url``: ``POST /preview`` for the script;
    ``project_environments``: per project its ready environments (``project:NAME`` choices,
    after the catalogue's entries; entries the site has not built are disabled with why)."""
    if not projects:
        return (
            '<p class="alert alert-warning">You have no project (Slurm account) to charge GPU-hours to. '
            "Ask your PI or the centre to add you to one.</p>"
        )
    if not cluster.partitions:
        return '<p class="alert alert-danger">The cluster offers no partition (sinfo listed none).</p>'
    budgets = budgets or {}
    chosen = form_choices(cluster, projects, catalogue, previous, budgets, project_environments)
    partition = chosen.partition
    course = budgets[chosen.project].course if chosen.project in budgets else None
    gpu_types = sorted({t for p in cluster.partitions.values() for t, n in p.gpus_per_node.items() if n > 0})

    project_options = "".join(
        _option(p, f"{p}: {budgets[p].note}" if p in budgets else p, selected=p == chosen.project,
                reason=budgets[p].reason if p in budgets else "")
        for p in projects
    )  # fmt: skip
    partition_options = "".join(
        _option(p.name, _partition_label(p), selected=p.name == partition.name) for p in cluster.partitions.values()
    )
    type_options = _option("", "none (CPU only)", selected=chosen.gpu_type == "",
                           reason=gpu_type_reason("", partition))  # fmt: skip
    type_options += "".join(
        _option(t, t, selected=t == chosen.gpu_type, reason=gpu_type_reason(t, partition, course)) for t in gpu_types
    )
    gpu_options = ""
    if chosen.gpus_as_sent:
        gpu_options += _option(chosen.gpus, f"{chosen.gpus} (as sent; not allowed)", selected=True,
                               base=f"{chosen.gpus} (as sent)")  # fmt: skip
    gpu_options += "".join(
        _option(str(n), str(n), selected=str(n) == chosen.gpus,
                reason=gpus_reason(n, chosen.gpu_type, partition, course))
        for n in _gpu_counts(cluster)
    )
    hour_options = ""
    if chosen.hours_as_sent:
        hour_options += _option(chosen.hours, f"{chosen.hours} h (as sent; not allowed)", selected=True,
                                base=f"{chosen.hours} h (as sent)")  # fmt: skip
    hour_options += "".join(
        _option(_hours_text(q), f"{_hours_text(q)} h", selected=_hours_text(q) == chosen.hours,
                reason=hours_reason(q, partition, course))
        for q in _quarters(cluster)
    )  # fmt: skip
    environment_options = "".join(
        _option(env.id, f"{env.name}: {env.description}", selected=env.id == chosen.environment,
                reason=env.unavailable_reason)
        for env in catalogue
    )  # fmt: skip
    environment_options += "".join(
        _option(f"project:{name}", f"{project}: {name} (project environment, kernel {project}-{name})",
                selected=f"project:{name}" == chosen.environment)
        for project in projects
        for name in (project_environments or {}).get(project, ())
    )  # fmt: skip

    budget_error = error is not None and error.field == BUDGET_FIELD
    fields = [
        _field("project", "Project (whose GPU-hour budget is charged)", project_options,
               "Only your projects; each with the GPU-hours it has left (and your cap, if you have one).", error),
        _field("partition", "Partition", partition_options,
               "Which nodes, and the longest session there (MaxTime).", error),
        _field("gpu_type", "GPU type", type_options,
               "Types the chosen partition does not have are disabled.", error),
        _field("gpus", "GPUs", gpu_options,
               "At most as many as one node of that type has.", error, budget_error=budget_error),
        _field("hours", "Hours", hour_options,
               "Quarter hours, up to the partition's MaxTime. The budget holds GPUs x hours x the type's weight "
               "until the session ends; you pay only for the time it runs.", error, budget_error=budget_error),
        _field("environment", "Environment", environment_options,
               "The notebook environment the job starts.", error),
    ]  # fmt: skip
    budget_feedback = ""
    if budget_error:
        assert error is not None
        budget_feedback = (
            f'<div id="hpchub-{BUDGET_FIELD}-error" class="alert alert-danger hpchub-budget-error">'
            f"{escape(error.message)}</div>"
        )
    other_error = ""
    if error is not None and error.field not in ALLOWED_KEYS and error.field != BUDGET_FIELD:
        other_error = f'<div class="alert alert-danger hpchub-form-error" role="alert">{escape(error.message)}</div>'
    data = json.dumps(cluster_json(cluster, budgets)).replace("<", "\\u003c")
    return f"""
<div class="hpchub-spawn-form" id="hpchub-spawn-form" data-preview-url="{escape(preview_url)}">
  {other_error}{"".join(fields)}
  {budget_feedback}
  {_preview_box(preview)}
  <p class="form-text hpchub-meter-hint">In a notebook: <code>from hpchub_notebook import BudgetMeter; BudgetMeter()</code> shows this session's cost, what the project has left and the walltime left.</p>
  <script type="application/json" id="hpchub-cluster">{data}</script>
  <script>{FORM_SCRIPT}</script>
  <style>{FORM_STYLE}</style>
</div>
"""


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


def _offer_buttons(offers: Sequence[Mapping]) -> str:
    return "".join(
        f'<button type="button" class="btn btn-outline-primary btn-sm me-2 mb-1 hpchub-offer" '
        f'data-gpu-type="{escape(str(o["gpu_type"]))}" data-gpus="{int(o["gpus"])}" '
        f'data-hours="{escape(plain_hours(o["hours"]))}">Use {escape(str(o["text"]))}</button>'
        for o in offers
    )


def _preview_box(preview: FormPreview | None) -> str:
    """The preview region (``aria-live``): filled by the server for the initial choices,
    then by the script after every change."""
    summary = left_now = refusal = offer = buttons = ""
    if preview is not None and preview.error:
        refusal = preview.error
    elif preview is not None and preview.answer:
        answer = preview.answer
        left_now = str(answer.get("left_now", ""))
        if answer.get("allowed"):
            summary = str(answer.get("summary", ""))
        else:
            refusal = str(answer.get("message", ""))
            offer = str(answer.get("offer_text", ""))
            buttons = _offer_buttons(answer.get("offers") or [])
    hidden = "" if (summary or refusal) else " hidden"
    return f"""<div id="hpchub-preview" class="hpchub-preview card card-body mb-3" role="status" aria-live="polite"{hidden}>
    <p id="hpchub-preview-summary" class="mb-1 fw-semibold">{escape(summary)}</p>
    <p id="hpchub-preview-refusal" class="mb-1 text-danger">{escape(refusal)}</p>
    <p id="hpchub-preview-offers" class="mb-1">{escape(offer)}</p>
    <div id="hpchub-preview-offer-buttons">{buttons}</div>
    <p id="hpchub-preview-left-now" class="mb-0 form-text">{escape(left_now)}</p>
  </div>"""


FORM_STYLE = """
.hpchub-spawn-form select.form-select { max-width: 100%; }
.hpchub-spawn-form .hpchub-preview p:empty { display: none; }
.hpchub-spawn-form option:disabled { color: #6c757d; }
"""

# Mirrors gpu_type_reason, gpus_reason and hours_reason above (the server checks again).
FORM_SCRIPT = r"""
(function () {
  "use strict";
  var root = document.getElementById("hpchub-spawn-form");
  if (!root || !window.fetch) { return; }
  var cluster = JSON.parse(document.getElementById("hpchub-cluster").textContent);
  var field = function (name) { return document.getElementById("hpchub-" + name); };
  var xsrf = (window.jhdata && window.jhdata.xsrf_token) || "";
  var url = root.getAttribute("data-preview-url");
  var pending = null, sequence = 0;

  function hoursText(quarters) { return String(quarters / 4); }

  function setOption(option, reason) {
    var label = option.getAttribute("data-label");
    option.disabled = !!reason;
    option.textContent = reason ? label + " (" + reason + ")" : label;
  }

  function firstEnabled(select) {
    for (var i = 0; i < select.options.length; i++) { if (!select.options[i].disabled) { return select.options[i]; } }
    return null;
  }

  function keepValid(select, prefer) {
    var current = select.options[select.selectedIndex];
    if (current && !current.disabled) { return; }
    var choice = prefer ? prefer(select) : null;
    choice = choice || firstEnabled(select);
    if (choice) { choice.selected = true; }
  }

  // The largest allowed value not above the current one, else the smallest allowed.
  function nearestBelow(select) {
    var current = parseFloat(select.value), best = null;
    Array.prototype.forEach.call(select.options, function (o) {
      var value = parseFloat(o.value);
      if (!o.disabled && !isNaN(value) && (isNaN(current) || value <= current)) { best = o; }
    });
    return best;
  }

  function applyLimits() {
    var name = field("partition").value;
    var partition = cluster.partitions[name];
    if (!partition) { return; }
    var course = (cluster.courses || {})[field("project").value] || null;
    var types = Object.keys(partition.gpus);
    var hasGpus = types.some(function (t) { return partition.gpus[t] > 0; });
    Array.prototype.forEach.call(field("gpu_type").options, function (option) {
      var t = option.value;
      var reason = t === "" ? (hasGpus ? "partition " + name + " has GPUs" : "")
        : (partition.gpus[t] > 0 ? "" : "not in partition " + name);
      if (!reason && t !== "" && course && course.gpu_types.length && course.gpu_types.indexOf(t) < 0) {
        reason = "course rule: " + course.gpu_types.join(" or ") + " only";
      }
      setOption(option, reason);
    });
    keepValid(field("gpu_type"));
    var type = field("gpu_type").value;
    var most = partition.gpus[type] || 0;
    Array.prototype.forEach.call(field("gpus").options, function (option) {
      var n = parseInt(option.value, 10), reason = "";
      if (isNaN(n)) { reason = "not allowed"; }
      else if (!hasGpus) { reason = n === 0 ? "" : "partition " + name + " has no GPUs"; }
      else if (n === 0) { reason = "only on a partition without GPUs"; }
      else if (most && n > most) { reason = "a " + name + " node has " + most + " " + type; }
      else if (course && course.max_gpus !== null && n > course.max_gpus) { reason = "course rule: at most " + course.max_gpus; }
      setOption(option, reason);
    });
    keepValid(field("gpus"), nearestBelow);
    Array.prototype.forEach.call(field("hours").options, function (option) {
      var quarters = Math.round(parseFloat(option.value) * 4), reason = "";
      if (isNaN(quarters) || Math.abs(quarters / 4 - parseFloat(option.value)) > 1e-9) { reason = "not allowed"; }
      else if (quarters > partition.max_quarters) {
        reason = "over the " + hoursText(partition.max_quarters) + " h MaxTime of " + name;
      }
      else if (course && course.max_quarters !== null && quarters > course.max_quarters) {
        reason = "course rule: at most " + hoursText(course.max_quarters) + " h";
      }
      setOption(option, reason);
    });
    keepValid(field("hours"), nearestBelow);
  }

  function options() {
    var result = {};
    ["project", "partition", "gpu_type", "gpus", "hours", "environment"].forEach(function (key) {
      var value = field(key).value;
      if (value === "") { return; }
      result[key] = key === "gpus" ? parseInt(value, 10) : value;
    });
    return result;
  }

  function show(answer, error) {
    var box = document.getElementById("hpchub-preview");
    var part = function (name, text) { document.getElementById("hpchub-preview-" + name).textContent = text || ""; };
    var buttons = document.getElementById("hpchub-preview-offer-buttons");
    buttons.textContent = "";
    if (error) {
      part("summary", ""); part("refusal", error); part("offers", ""); part("left-now", "");
    } else {
      part("summary", answer.allowed ? answer.summary : "");
      part("refusal", answer.allowed ? "" : answer.message);
      part("offers", answer.allowed ? "" : answer.offer_text);
      part("left-now", answer.left_now);
      (answer.allowed ? [] : answer.offers || []).forEach(function (offer) {
        var button = document.createElement("button");
        button.type = "button";
        button.className = "btn btn-outline-primary btn-sm me-2 mb-1 hpchub-offer";
        button.setAttribute("data-gpu-type", offer.gpu_type);
        button.setAttribute("data-gpus", String(offer.gpus));
        button.setAttribute("data-hours", String(offer.hours));
        button.textContent = "Use " + offer.text;
        buttons.appendChild(button);
      });
    }
    box.hidden = false;
    root.setAttribute("data-preview-state", error ? "error" : (answer.allowed ? "allowed" : "refused"));
  }

  function preview() {
    var mine = ++sequence;
    root.setAttribute("data-preview-state", "asking");
    fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-XSRFToken": xsrf},
      body: JSON.stringify({user_options: options()})
    }).then(function (response) {
      return response.json().then(function (body) { return {ok: response.ok, body: body}; });
    }).then(function (result) {
      if (mine !== sequence) { return; }
      if (result.ok) { show(result.body, ""); } else { show(null, result.body.message || "The preview failed."); }
    }).catch(function () {
      if (mine === sequence) { show(null, "The preview is not available right now; the server checks again at Start."); }
    });
  }

  function changed() {
    root.setAttribute("data-preview-state", "changed");
    applyLimits();
    if (pending) { clearTimeout(pending); }
    if (url) { pending = setTimeout(preview, 250); }  // no ledger: no preview
  }

  root.addEventListener("change", changed);
  root.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest(".hpchub-offer") : null;
    if (!button) { return; }
    field("gpu_type").value = button.getAttribute("data-gpu-type");
    applyLimits();
    field("gpus").value = button.getAttribute("data-gpus");
    field("hours").value = button.getAttribute("data-hours");
    changed();
    field("gpus").focus();
  });
  applyLimits();
  if (url) { preview(); }
})();
"""
