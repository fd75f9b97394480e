"""Unit tests for the API's authorization table (hub/api/access.py): pure, one row per case."""

from __future__ import annotations

import pytest

from hub.api.access import (
    TA_CAPS_NOT_YET,
    ProjectAccess,
    check_cap_change,
    check_member_change,
    project_access,
    refuse_cap_changes,
    refuse_member_changes,
)
from hub.ledger.arithmetic import MGS_PER_GPU_HOUR as H
from hub.ledger.courses import CourseRules
from hub.ledger.types import Role

pytestmark = pytest.mark.unit

PI, MANAGER, MEMBER, INSTRUCTOR, TA, STUDENT = (
    Role.PI, Role.MANAGER, Role.MEMBER, Role.INSTRUCTOR, Role.TA, Role.STUDENT,
)  # fmt: skip


# --- who sees and does what ---------------------------------------------------------------------------

#                     visible read_all manage set_caps raise_caps
ACCESS_TABLE = [
    pytest.param(None, True, ProjectAccess(True, True, True, True, False), id="admin-not-member"),
    pytest.param(MEMBER, True, ProjectAccess(True, True, True, True, False), id="admin-who-is-member"),
    pytest.param(PI, False, ProjectAccess(True, True, True, True, False), id="pi"),
    pytest.param(MANAGER, False, ProjectAccess(True, True, True, True, False), id="manager"),
    pytest.param(INSTRUCTOR, False, ProjectAccess(True, True, True, True, False), id="instructor"),
    pytest.param(TA, False, ProjectAccess(True, True, False, False, True), id="ta"),
    pytest.param(MEMBER, False, ProjectAccess(True, False, False, False, False), id="member"),
    pytest.param(STUDENT, False, ProjectAccess(True, False, False, False, False), id="student"),
    pytest.param(None, False, ProjectAccess(False, False, False, False, False), id="anyone-else"),
]


@pytest.mark.parametrize(("role", "is_admin", "expected"), ACCESS_TABLE)
def test_project_access(role, is_admin, expected) -> None:
    assert project_access(role, is_admin=is_admin) == expected


def test_every_role_is_in_the_table() -> None:
    assert {param.values[0] for param in ACCESS_TABLE} - {None} == set(Role)


@pytest.mark.parametrize(
    ("role", "is_admin", "members", "caps"),
    [
        pytest.param(PI, False, True, True, id="pi"),
        pytest.param(TA, False, False, True, id="ta-caps-only"),
        pytest.param(STUDENT, False, False, False, id="student"),
        pytest.param(None, True, True, True, id="admin"),
    ],
)
def test_first_questions(role, is_admin, members, caps) -> None:
    assert (refuse_member_changes("p", role, is_admin=is_admin) is None) is members
    assert (refuse_cap_changes("p", role, is_admin=is_admin) is None) is caps


# --- member changes ------------------------------------------------------------------------------------

# actor (role), target (current role or None), new role (None: remove) -> refused message part (None: allowed)
MEMBER_CHANGES = [
    pytest.param(PI, None, MEMBER, None, id="pi-adds-member"),
    pytest.param(PI, None, PI, None, id="pi-adds-co-pi"),
    pytest.param(PI, MEMBER, MANAGER, None, id="pi-promotes-member"),
    pytest.param(PI, MANAGER, None, None, id="pi-removes-manager"),
    pytest.param(MANAGER, None, MEMBER, None, id="manager-adds-member"),
    pytest.param(MANAGER, None, MANAGER, None, id="manager-adds-manager"),
    pytest.param(MANAGER, None, PI, "may not give the role pi", id="manager-cannot-make-pi"),
    pytest.param(MANAGER, PI, None, "may not change the membership of a pi", id="manager-cannot-remove-pi"),
    pytest.param(MANAGER, PI, MEMBER, "may not change the membership of a pi", id="manager-cannot-demote-pi"),
    pytest.param(INSTRUCTOR, None, STUDENT, None, id="instructor-adds-student"),
    pytest.param(INSTRUCTOR, None, TA, None, id="instructor-adds-ta"),
    pytest.param(INSTRUCTOR, STUDENT, None, None, id="instructor-removes-student"),
    pytest.param(TA, None, STUDENT, "a ta of p may not change its members", id="ta-cannot-add"),
    pytest.param(TA, STUDENT, None, "a ta of p may not change its members", id="ta-cannot-remove"),
    pytest.param(MEMBER, None, MEMBER, "a member of p may not change its members", id="member-cannot-add"),
    pytest.param(STUDENT, STUDENT, None, "a student of p may not change", id="student-cannot-remove"),
    pytest.param(None, None, MEMBER, "a non-member of p may not change", id="non-member"),
]


@pytest.mark.parametrize(("actor_role", "target_role", "new_role", "refused"), MEMBER_CHANGES)
def test_member_change(actor_role, target_role, new_role, refused) -> None:
    refusal = check_member_change(
        project="p",
        actor="ann",
        actor_role=actor_role,
        is_admin=False,
        target="tim",
        target_role=target_role,
        new_role=new_role,
    )
    if refused is None:
        assert refusal is None
    else:
        assert refusal is not None and refusal.status == 403 and refused in refusal.message


@pytest.mark.parametrize("new_role", [PI, MEMBER, None], ids=["promote", "demote", "remove"])
def test_only_an_admin_changes_their_own_membership(new_role) -> None:
    refusal = check_member_change(
        project="p", actor="ann", actor_role=PI, is_admin=False, target="ann", target_role=PI, new_role=new_role
    )
    assert refusal is not None and "your own membership" in refusal.message
    assert (
        check_member_change(
            project="p", actor="ann", actor_role=PI, is_admin=True, target="ann", target_role=PI, new_role=new_role
        )
        is None
    )


# --- cap changes -------------------------------------------------------------------------------------

LIMIT = 10 * H
# actor, target role, current cap, new cap, TA limit -> refused message part (None: allowed)
CAP_CHANGES = [
    pytest.param(PI, MEMBER, 20 * H, 30 * H, None, None, id="pi-raises"),
    pytest.param(PI, MEMBER, 20 * H, 5 * H, None, None, id="pi-lowers"),
    pytest.param(PI, MEMBER, 20 * H, None, None, None, id="pi-removes-cap"),
    pytest.param(MANAGER, MEMBER, None, 5 * H, None, None, id="manager-sets"),
    pytest.param(MANAGER, PI, None, 5 * H, None, "may not change the cap of a pi", id="manager-cannot-cap-pi"),
    pytest.param(INSTRUCTOR, STUDENT, 5 * H, 6 * H, None, None, id="instructor-raises"),
    pytest.param(INSTRUCTOR, TA, None, 6 * H, None, None, id="instructor-caps-ta"),
    pytest.param(TA, STUDENT, 5 * H, 6 * H, None, TA_CAPS_NOT_YET.format(project="p"), id="ta-without-limit"),
    pytest.param(TA, STUDENT, 5 * H, 6 * H, LIMIT, None, id="ta-raises-within-limit"),
    pytest.param(TA, STUDENT, 5 * H, LIMIT, LIMIT, None, id="ta-raises-to-limit"),
    pytest.param(TA, STUDENT, 5 * H, LIMIT + 360, LIMIT, "up to 10.0 GPU-h", id="ta-over-limit"),
    pytest.param(TA, STUDENT, 5 * H, 4 * H, LIMIT, "may only raise caps", id="ta-lowers"),
    pytest.param(TA, STUDENT, 5 * H, 5 * H, LIMIT, "may only raise caps", id="ta-same"),
    pytest.param(TA, STUDENT, 5 * H, None, LIMIT, "may not remove a cap", id="ta-removes"),
    pytest.param(TA, STUDENT, None, 5 * H, LIMIT, "has no cap", id="ta-uncapped-student"),
    pytest.param(TA, MEMBER, 5 * H, 6 * H, LIMIT, None, id="ta-raises-member"),
    pytest.param(TA, INSTRUCTOR, 5 * H, 6 * H, LIMIT, "only the caps of students and members", id="ta-instructor"),
    pytest.param(TA, TA, 5 * H, 6 * H, LIMIT, "only the caps of students and members", id="ta-other-ta"),
    pytest.param(MEMBER, MEMBER, 5 * H, 6 * H, LIMIT, "a member of p may not change caps", id="member"),
    pytest.param(STUDENT, STUDENT, 5 * H, 6 * H, LIMIT, "a student of p may not change caps", id="student"),
]


@pytest.mark.parametrize(("actor_role", "target_role", "current", "new", "limit", "refused"), CAP_CHANGES)
def test_cap_change(actor_role, target_role, current, new, limit, refused) -> None:
    refusal = check_cap_change(
        project="p",
        actor="ann",
        actor_role=actor_role,
        is_admin=False,
        target="tim",
        target_role=target_role,
        current_cap_mgs=current,
        new_cap_mgs=new,
        ta_limit_mgs=limit,
    )
    if refused is None:
        assert refusal is None
    else:
        assert refusal is not None and refusal.status == 403 and refused in refusal.message


@pytest.mark.parametrize("role", [PI, MANAGER, INSTRUCTOR, TA], ids=lambda role: role.value)
def test_nobody_but_an_admin_changes_their_own_cap(role) -> None:
    refusal = check_cap_change(
        project="p",
        actor="ann",
        actor_role=role,
        is_admin=False,
        target="ann",
        target_role=role,
        current_cap_mgs=H,
        new_cap_mgs=2 * H,
        ta_limit_mgs=LIMIT,
    )
    assert refusal is not None
    assert (
        check_cap_change(
            project="p",
            actor="ann",
            actor_role=None,
            is_admin=True,
            target="ann",
            target_role=role,
            current_cap_mgs=H,
            new_cap_mgs=None,
            ta_limit_mgs=None,
        )
        is None
    )


# --- a course's own TA extension limit --------------------------------------------------------

COURSE_RULES = CourseRules(per_student_mgs=5 * H, ta_extension_mgs=2 * H)
# actor, current cap, new cap, the course's TA extension (None: unset), site limit -> refused message part
COURSE_TA_CHANGES = [
    pytest.param(TA, 5 * H, 7 * H, 2 * H, None, None, id="ta-to-the-course-limit"),
    pytest.param(TA, 6 * H, 7 * H, 2 * H, None, None, id="ta-second-extension-within"),
    pytest.param(
        TA,
        5 * H,
        7 * H + 360,
        2 * H,
        None,
        "p lets a ta extend a student's cap by at most 2.0 GPU-h over the course's 5.0 GPU-h, to 7.0 GPU-h "
        "(course rule ta-extension-limit); tim's cap would be 7.0001 GPU-h; ask an instructor",
        id="ta-over-the-course-limit",
    ),
    pytest.param(TA, 5 * H, 6 * H, 0, None, "p lets no ta extend a cap (course rule ta-extension-limit)", id="ta-zero"),
    pytest.param(TA, 5 * H, 9 * H, 2 * H, LIMIT, "course rule ta-extension-limit", id="course-limit-wins-over-site"),
    pytest.param(TA, 5 * H, 9 * H, None, LIMIT, None, id="unset-course-limit-site-applies"),
    pytest.param(TA, 5 * H, 4 * H, 2 * H, None, "may only raise caps", id="ta-lowers-under-course-limit"),
    pytest.param(INSTRUCTOR, 5 * H, 50 * H, 2 * H, None, None, id="instructor-unlimited"),
]


@pytest.mark.parametrize(("actor_role", "current", "new", "extension", "site", "refused"), COURSE_TA_CHANGES)
def test_a_courses_ta_extension_limit(actor_role, current, new, extension, site, refused) -> None:
    rules = CourseRules(per_student_mgs=5 * H, ta_extension_mgs=extension)
    refusal = check_cap_change(project="p", actor="ann", actor_role=actor_role, is_admin=False, target="tim",
                               target_role=STUDENT, current_cap_mgs=current, new_cap_mgs=new, ta_limit_mgs=site,
                               course_rules=rules)  # fmt: skip
    if refused is None:
        assert refusal is None
    else:
        assert refusal is not None and refusal.status == 403 and refused in refusal.message


def test_an_admin_is_not_bound_by_the_course_limit() -> None:
    assert check_cap_change(project="p", actor="root", actor_role=None, is_admin=True, target="tim",
                            target_role=STUDENT, current_cap_mgs=5 * H, new_cap_mgs=500 * H, ta_limit_mgs=None,
                            course_rules=COURSE_RULES) is None  # fmt: skip
