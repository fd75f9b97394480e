"""Who may see and change what in a project (pure: no database, no framework).

The REST API asks two questions, in this order:

1. Does the token carry the JupyterHub scope for the kind of request?
   ``custom:hpchub:read`` for reading (and the preview), ``custom:hpchub:manage`` for
   changing members and caps. JupyterHub answers that (``needs_scope``): 403.
2. What may this caller do in this project? That depends on the caller's role in the
   ledger (or on being a JupyterHub admin) and is decided here:

=========================  =======  ============  ==============  ===============
caller                     sees     member rows   members, caps   caps
=========================  =======  ============  ==============  ===============
JupyterHub admin           yes      all           change          change
pi, manager, instructor    yes      all           change [1]      change [1]
ta                         yes      all           no              raise only [2]
member, student            yes      own row       no              no
anyone else                no: 404  -             -               -
=========================  =======  ============  ==============  ===============

[1] Nobody but an admin changes their own membership or cap, and a caller changes
only members whose role ranks no higher than their own, and gives only such roles
(rank: pi = instructor > manager > ta > member = student). So a manager cannot
remove the pi or make anyone pi.
[2] Only when a limit is set: a ta may raise a student's or member's cap within it, never
lower or remove one. A course's own limit (``hpchub course settings NAME
--ta-extension-limit H``, set by its instructors) wins: a ta may raise a cap to at most the
course's per-student cap + H (course rule ta-extension-limit). Otherwise the site's
``HPCHubAPI.ta_cap_limit_gpu_hours`` is the highest cap a ta may give; with neither,
TA cap changes are refused with a message saying so.

A project the caller may not see answers 404 exactly as an unknown one does, so
project names do not leak.
"""

from __future__ import annotations

from dataclasses import dataclass

from hub.ledger.arithmetic import format_gpu_hours
from hub.ledger.courses import CourseRules, ta_extension_refusal
from hub.ledger.types import Role

# Who may do what, as ranks: a caller acts on (and gives) roles of rank <= their own.
ROLE_RANK: dict[Role, int] = {
    Role.PI: 3,
    Role.INSTRUCTOR: 3,
    Role.MANAGER: 2,
    Role.TA: 1,
    Role.MEMBER: 0,
    Role.STUDENT: 0,
}
MANAGING_ROLES = frozenset({Role.PI, Role.MANAGER, Role.INSTRUCTOR})
READ_ALL_ROLES = MANAGING_ROLES | {Role.TA}
TA_RAISABLE_ROLES = frozenset({Role.STUDENT, Role.MEMBER})

NOT_FOUND_MESSAGE = "no project {project!r}"  # the same for unknown and invisible projects
TA_CAPS_NOT_YET = (
    "a ta may not change caps in {project}: no limit is set for TAs (an instructor sets one with the course's "
    "TA extension limit); ask an instructor of {project}"
)


@dataclass(frozen=True)
class ProjectAccess:
    """What one caller may do in one project."""

    visible: bool  # False: answer 404, as for an unknown project
    read_all_members: bool  # False: only the caller's own member row and charges
    manage_members: bool  # add, change the role of, remove members
    set_caps: bool  # set, lower, raise or remove caps
    raise_caps: bool  # raise caps only, within the TA limit


NO_ACCESS = ProjectAccess(False, False, False, False, False)


def project_access(role: Role | None, *, is_admin: bool) -> ProjectAccess:
    """The table above: ``role`` is the caller's active role in the project (None: none)."""
    if is_admin:
        return ProjectAccess(True, True, True, True, False)
    if role is None:
        return NO_ACCESS
    manages = role in MANAGING_ROLES
    return ProjectAccess(
        visible=True,
        read_all_members=role in READ_ALL_ROLES,
        manage_members=manages,
        set_caps=manages,
        raise_caps=role is Role.TA,
    )


@dataclass(frozen=True)
class Refusal:
    """Why a visible project's change is refused (HTTP ``status``, ``message`` as is)."""

    status: int
    message: str


def _role_name(role: Role | None) -> str:
    """``a pi``, ``an instructor``, ``a non-member`` (for messages)."""
    if role is None:
        return "a non-member"
    return f"an {role.value}" if role.value[0] in "aeiou" else f"a {role.value}"


def refuse_member_changes(project: str, actor_role: Role | None, *, is_admin: bool) -> Refusal | None:
    """The first question of any member change: may this caller change members at all?"""
    if project_access(actor_role, is_admin=is_admin).manage_members:
        return None
    return Refusal(
        403, f"{_role_name(actor_role)} of {project} may not change its members; ask a pi, manager or instructor"
    )


def refuse_cap_changes(project: str, actor_role: Role | None, *, is_admin: bool) -> Refusal | None:
    """The first question of any cap change: may this caller change caps at all?"""
    access = project_access(actor_role, is_admin=is_admin)
    if access.set_caps or access.raise_caps:
        return None
    return Refusal(403, f"{_role_name(actor_role)} of {project} may not change caps; ask a pi, manager or instructor")


def check_member_change(
    *,
    project: str,
    actor: str,
    actor_role: Role | None,
    is_admin: bool,
    target: str,
    target_role: Role | None,
    new_role: Role | None,
) -> Refusal | None:
    """May ``actor`` add ``target`` as ``new_role``, change their role, or (``new_role``
    None) remove them? ``target_role`` is the target's current role (None: not a member)."""
    if is_admin:
        return None
    refusal = refuse_member_changes(project, actor_role, is_admin=False)
    if refusal is not None:
        return refusal
    assert actor_role is not None
    rank = ROLE_RANK[actor_role]
    if target == actor:
        return Refusal(403, "you may not change your own membership; ask another pi or a site admin")
    if target_role is not None and ROLE_RANK[target_role] > rank:
        return Refusal(403, f"{_role_name(actor_role)} may not change the membership of {_role_name(target_role)}")
    if new_role is not None and ROLE_RANK[new_role] > rank:
        return Refusal(403, f"{_role_name(actor_role)} may not give the role {new_role.value}")
    return None


def check_course_creation(
    *,
    caller: str | None,
    is_admin: bool,
    instructs_a_course: bool,
    max_mgs: int | None,
    gpu_hours_mgs: int,
    instructor: str | None,
) -> Refusal | None:
    """May the caller create a course with this budget? Admins: any. An instructor of a course:
    up to the site's ``HPCHubAPI.instructor_course_max_gpu_hours`` (unset: no), and only as its
    instructor themself. Anyone else: no."""
    if is_admin:
        return None
    if caller is None or not instructs_a_course:
        return Refusal(403, "only the portal's admins and the instructors of a course may create courses")
    if max_mgs is None:
        return Refusal(403, "instructors may not create courses on this hub (HPCHubAPI.instructor_course_max_gpu_hours "
                            "is not set); ask the portal's admins")  # fmt: skip
    if instructor not in (None, "", caller):
        return Refusal(403, f"instructor: an instructor creates a course for themself ({caller}), not for {instructor}")
    if gpu_hours_mgs > max_mgs:
        return Refusal(403, f"gpu_hours: an instructor may give a new course at most {format_gpu_hours(max_mgs)} GPU-h; "
                            "ask the portal's admins for more")  # fmt: skip
    return None


def check_cap_change(
    *,
    project: str,
    actor: str,
    actor_role: Role | None,
    is_admin: bool,
    target: str,
    target_role: Role,
    current_cap_mgs: int | None,
    new_cap_mgs: int | None,
    ta_limit_mgs: int | None,
    course_rules: CourseRules | None = None,
) -> Refusal | None:
    """May ``actor`` set ``target``'s cap to ``new_cap_mgs`` (None: no cap)? ``ta_limit_mgs``:
    the site's highest cap a ta may give; ``course_rules``: the course's, whose own TA
    extension limit (if set) replaces it."""
    if is_admin:
        return None
    refusal = refuse_cap_changes(project, actor_role, is_admin=False)
    if refusal is not None:
        return refusal
    assert actor_role is not None
    if project_access(actor_role, is_admin=False).set_caps:
        if target == actor:
            return Refusal(403, "you may not change your own cap; ask another pi or a site admin")
        if ROLE_RANK[target_role] > ROLE_RANK[actor_role]:
            return Refusal(403, f"{_role_name(actor_role)} may not change the cap of {_role_name(target_role)}")
        return None
    # a ta
    course_limit = course_rules is not None and course_rules.ta_extension_mgs is not None
    if ta_limit_mgs is None and not course_limit:
        return Refusal(403, TA_CAPS_NOT_YET.format(project=project))
    if target_role not in TA_RAISABLE_ROLES:
        return Refusal(403, f"a ta may raise only the caps of students and members, not of {_role_name(target_role)}")
    if current_cap_mgs is None:
        return Refusal(403, f"{target} has no cap in {project}; a ta may only raise caps")
    if new_cap_mgs is None:
        return Refusal(403, "a ta may not remove a cap; ask an instructor")
    if new_cap_mgs <= current_cap_mgs:
        return Refusal(403, f"a ta may only raise caps: {target}'s cap is {format_gpu_hours(current_cap_mgs)} GPU-h")
    if course_limit:
        refusal = ta_extension_refusal(project, course_rules, target, new_cap_mgs)
        return None if refusal is None else Refusal(403, refusal)
    if new_cap_mgs > ta_limit_mgs:
        return Refusal(403, f"a ta may raise caps up to {format_gpu_hours(ta_limit_mgs)} GPU-h; ask an instructor")
    return None
