"""Course rosters from the identity provider's groups: mixed into ``Ledger`` (uses
``_read``/``_write``/``_project``, ``add_member``/``remove_member``).

The group claims reach the hub only when a user logs in (or at the refresh before a spawn):
``sync_course_groups`` applies them then, and ``record_login_groups`` keeps what they were
(an appended row when they change). ``sync_course`` (``hpchub course sync``) applies the
recorded groups of every user to one course: what the identity provider said at each
user's last login, not what it says now.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from hub.ledger.errors import LedgerInputError, NotFound
from hub.ledger.models import LoginGroups, Member, Project
from hub.ledger.types import ProjectKind, ProjectState, Role, check_enum, check_user

GROUP_SOURCE = "IdP group "  # added_by of a membership a group gave
_GROUP_ROLE_ORDER = [Role.INSTRUCTOR, Role.TA, Role.STUDENT, Role.PI, Role.MANAGER, Role.MEMBER]
MAX_GROUPS = 500  # more groups than this at one login: the first ones (sorted) are recorded
MAX_GROUP_LENGTH = 200  # longer group names are not recorded (no course pattern makes one)


@dataclass(frozen=True)
class CourseSync:
    """What ``sync_course`` did: the changes in words, how many users' recorded groups it read,
    and the group-given members with no recorded groups (left as they are)."""

    changes: tuple[str, ...]
    users_read: int
    unrecorded: tuple[str, ...]


def _groups_text(groups: Collection[str]) -> str:
    kept = sorted({g for g in groups if isinstance(g, str) and 0 < len(g) <= MAX_GROUP_LENGTH and "\n" not in g})
    return "\n".join(kept[:MAX_GROUPS])


class CourseGroups:
    def record_login_groups(self, user: str, groups: Collection[str], *, now: datetime | None = None) -> bool:
        """Keep the user's IdP groups as a login showed them: a new row when they differ from
        the last one recorded. Returns whether a row was added."""
        check_user(user)
        text = _groups_text(groups)
        now = self._now(now)
        last = select(LoginGroups.groups).where(LoginGroups.user == user).order_by(LoginGroups.id.desc()).limit(1)
        with self._read() as session:  # most logins change nothing: no write lock for them
            if session.scalars(last).first() == text:
                return False
        with self._write() as session:
            if session.scalars(last).first() == text:
                return False
            session.add(LoginGroups(user=user, groups=text, seen_at=now))
            return True

    def login_groups(self) -> dict[str, tuple[set[str], datetime]]:
        """Each user's groups as their latest recorded login showed them, and when."""
        with self._read() as session:
            latest = select(func.max(LoginGroups.id)).group_by(LoginGroups.user)
            rows = session.execute(
                select(LoginGroups.user, LoginGroups.groups, LoginGroups.seen_at).where(LoginGroups.id.in_(latest))
            ).all()
        return {user: (set(text.split("\n")) - {""}, seen_at) for user, text, seen_at in rows}

    def sync_course_groups(
        self,
        user: str,
        groups: Collection[str],
        group_roles: Mapping[str, str],
        *,
        now: datetime | None = None,
        course: str | None = None,
    ) -> list[str]:
        """At a login (or a refresh before a spawn): the user's IdP groups decide their
        memberships in active courses (only ``course`` if given). ``group_roles`` maps a group
        pattern with ``{course}`` (e.g. ``{course}-students``) to a role. A member is added
        with the highest role a group gives (instructor, ta, student); a membership a group
        gave ends when no group gives it any more. Memberships added otherwise (an admin,
        the roster) are left alone. Returns what changed, in words."""
        check_user(user)
        roles = {pattern: check_enum(Role, role, "group_roles") for pattern, role in group_roles.items()}
        now = self._now(now)
        groups = set(groups)
        with self._read() as session:
            query = (
                select(Project.name, Member.role, Member.added_by)
                .outerjoin(Member, (Member.project_id == Project.id) & (Member.user == user) & Member.active.is_(True))
                .where(Project.kind == ProjectKind.COURSE, Project.state == ProjectState.ACTIVE)
            )  # fmt: skip
            courses = session.execute(query if course is None else query.where(Project.name == course)).all()
        changes = []
        for name, role, added_by in courses:
            given = [(pattern.format(course=name), roles[pattern]) for pattern in roles]
            wanted = [(group, granted) for group, granted in given if group in groups]
            if role is None and wanted:
                group, granted = min(wanted, key=lambda pair: _GROUP_ROLE_ORDER.index(pair[1]))
                try:
                    self.add_member(name, user, role=granted, who=GROUP_SOURCE + group, now=now)
                except LedgerInputError:
                    continue  # added meanwhile (another login)
                changes.append(f"{user} joined {name} as {granted.value} (IdP group {group})")
            elif role is not None and not wanted and (added_by or "").startswith(GROUP_SOURCE):
                try:
                    self.remove_member(name, user, who=f"{GROUP_SOURCE}{added_by[len(GROUP_SOURCE) :]} (left)", now=now)
                except NotFound:
                    continue
                changes.append(f"{user} left {name} (no longer in {added_by[len(GROUP_SOURCE) :]})")
        return changes

    def sync_course(self, name: str, group_roles: Mapping[str, str], *, now: datetime | None = None) -> CourseSync:
        """``hpchub course sync``: apply each user's recorded login groups to course ``name``
        as a login would (``sync_course_groups``). Group-given members whose groups were never
        recorded are reported and left alone."""
        with self._read() as session:
            project = self._project(session, name)
            if project.kind is not ProjectKind.COURSE:
                raise LedgerInputError("project", f"{name} is a {project.kind.value} project, not a course")
            if project.state is not ProjectState.ACTIVE:
                raise LedgerInputError("project", f"{name} is {project.state.value}: its roster is no longer synced")
            group_members = session.scalars(
                select(Member.user).where(Member.project_id == project.id, Member.active.is_(True),
                                          Member.added_by.startswith(GROUP_SOURCE))
            ).all()  # fmt: skip
        recorded = self.login_groups()
        changes: list[str] = []
        for user, (groups, _seen_at) in sorted(recorded.items()):
            changes += self.sync_course_groups(user, groups, group_roles, now=now, course=name)
        unrecorded = tuple(sorted(user for user in group_members if user not in recorded))
        return CourseSync(tuple(changes), len(recorded), unrecorded)
