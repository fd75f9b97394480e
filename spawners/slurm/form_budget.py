"""The spawn form's budget figures, read from the ledger (no JupyterHub; the spawner calls
this in a worker thread).

- :func:`project_budgets`: per project what it (and the user's cap in it) has left, and why
  it cannot be chosen when it cannot pay for the smallest GPU session.
- :func:`preview_answer`: the answer of ``POST /preview`` (the request context's validation,
  ``Ledger.preview``, the offers that fit); the endpoint and the form both call it.
- :func:`initial_preview`: that answer for the choices the form shows first, so the page says
  what a request costs even without JavaScript.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hub.ledger import Ledger, LedgerError
from hub.ledger.arithmetic import Rounding, format_gpu_hours
from hub.ledger.offers import (
    cheapest_session_mgs,
    gpu_choices,
    preview_json,
    refusal_offers,
)
from hub.ledger.types import Role
from spawners.slurm.form import CourseLimits, FormPreview, ProjectBudget, form_choices
from spawners.slurm.options import OptionsError, offered_gpu_types
from spawners.slurm.request_context import RequestContext
from spawners.slurm.types import ClusterInfo

LAB_HOURS_OFF = "course rule lab-hours-only: its lab hours are off now"
LAB_HOURS_UNKNOWN = "course rule lab-hours-only: whether its lab hours are on is not known now"


def project_budgets(
    ledger: Ledger, user: str, cluster: ClusterInfo, projects: Sequence[str],
    lab_hours: Mapping[str, bool | None] | None = None,
) -> dict[str, ProjectBudget]:  # fmt: skip
    """``{"vision-lab": ProjectBudget("96.0 GPU-h left; your cap: 16.0 left")}``; a project
    whose figures cannot be read is left out (the form then shows its bare name).
    ``lab_hours``: per course whether its lab hours are on now (None: not known); a course
    whose students start sessions only then cannot be chosen outside them."""
    gpu_types = sorted({t for p in cluster.partitions.values() for t in offered_gpu_types(p)})
    cheapest = cheapest_session_mgs(gpu_types, ledger.rates)
    courses = course_limits(ledger, user, projects)
    budgets = {}
    for project in projects:
        try:
            figures = ledger.figures(project)
        except LedgerError:
            continue
        left = figures.remaining_mgs
        note = f"{format_gpu_hours(max(0, left), Rounding.FLOOR)} GPU-h left"
        member = next((m for m in figures.members if m.user == user), None)
        if member is not None and member.cap_remaining_mgs is not None:
            note += f"; your cap: {format_gpu_hours(max(0, member.cap_remaining_mgs), Rounding.FLOOR)} left"
            left = min(left, member.cap_remaining_mgs)
        reason = ""
        course = courses.get(project)
        if course is not None and course.lab_hours_only and (lab_hours or {}).get(project) is not True:
            reason = LAB_HOURS_OFF if (lab_hours or {}).get(project) is False else LAB_HOURS_UNKNOWN
        elif cheapest is not None and left < cheapest:
            reason = (f"cannot pay for the smallest session, 1 GPU for 0.25 h = "
                      f"{format_gpu_hours(cheapest, Rounding.CEILING)} GPU-h")  # fmt: skip
        budgets[project] = ProjectBudget(note, reason, courses.get(project))
    return budgets


def course_limits(ledger: Ledger, user: str, projects: Sequence[str]) -> dict[str, CourseLimits]:
    """The rules of each course among ``projects`` in which ``user`` is a student."""
    limits = {}
    for info, role in ledger.memberships(user):
        if info.name not in projects or role is not Role.STUDENT:
            continue
        rules = ledger.course_rules(info.name)
        if rules is not None:
            quarters = None if rules.max_seconds is None else rules.max_seconds // 900
            limits[info.name] = CourseLimits(rules.gpu_types, rules.max_gpus, quarters, rules.lab_hours_only)
    return limits


def preview_answer(context: RequestContext, options: Mapping, ledger: Ledger, lab_hours_on: bool | None = None) -> dict:
    """``POST /preview``'s answer for ``options``: the spawn's own check (``context.validate``),
    ``Ledger.preview`` and, when refused, the offers that fit. Raises ``OptionsError`` or
    ``LedgerError``."""
    request, admission = context.preview(options, ledger, lab_hours_on=lab_hours_on)
    choices = gpu_choices(context.partition(request).gpus_per_node, request.gpu_type)
    offers = refusal_offers(request.gpus, request.time_limit_minutes * 60, admission, choices, ledger.rates)
    return preview_json(context.user, request.to_options(), admission, offers)


def initial_preview(
    ledger: Ledger,
    context: RequestContext,
    previous: Mapping,
    budgets: Mapping[str, ProjectBudget],
    lab_hours: Mapping[str, bool | None] | None = None,
) -> FormPreview:
    """The preview of what the form shows selected (an answer of ``POST /preview``, or its error)."""
    chosen = form_choices(context.cluster, list(context.projects), context.catalogue, previous, budgets,
                          context.project_environments)  # fmt: skip
    options = chosen.to_options()
    try:
        answer = preview_answer(context, options, ledger, (lab_hours or {}).get(chosen.project))
    except (OptionsError, LedgerError) as exc:
        return FormPreview(error=str(exc))
    return FormPreview(answer=answer)
