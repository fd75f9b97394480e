"""The demo's projects, budgets and members in the ledger (the demo identities of README.md). Idempotent."""

from __future__ import annotations

from datetime import date, timedelta

from hub.ledger import Ledger, NotFound, upgrade
from hub.ledger.allocations import Audience, check_call_spec
from hub.ledger.courses import make_rules, parse_roster_csv

# project -> (Slurm account, kind, GPU-hours, members: user -> (role, cap or None))
DEMO_PROJECTS: dict[str, tuple[str, str, str, dict[str, tuple[str, str | None]]]] = {
    "vision-lab": ("vision-lab", "research", "100", {"alice": ("pi", None), "bob": ("member", "20")}),
    "cs101": ("cs101", "course", "50", {"dave": ("instructor", None), "tom": ("ta", None), "carol": ("student", "5")}),
    "tiny-lab": ("tiny-lab", "research", "0.25", {"erin": ("pi", None)}),
}
SEEDED_BY = "hpchub-demo"
# cs101 is made by ``course create`` (contract): its rules, a term around today, and a roster
# of 30 principals who have not logged in yet (pending members).
DEMO_COURSE_RULES = {
    "per_student": "5",
    "gpu_types": "a100",
    "max_gpus": 1,
    "max_hours": 2,
    "max_sessions": 1,
    "reservation": "cs101-lab",
}
DEMO_ROSTER_CSV = "principal,role\n" + "".join(f"student{n:02d}@uni.example,student\n" for n in range(1, 31))


def demo_calls(today: date) -> list:
    """The demo's open calls: an academic round with review, a start-up call that awards at once,
    and a round for companies (open from a week ago for four months, whatever the date)."""
    opens, closes = today - timedelta(days=7), today + timedelta(days=120)
    return [
        check_call_spec(
            name="2027-academic", title="Academic GPU call 2027", audiences="academic", opens=opens, closes=closes,
            gpu_hours=5000, max_request=500, period_months=12, review_required=True, reviews_visible=True,
        ),
        check_call_spec(
            name="starter", title="Start-up allocation: compute today", audiences=[a.value for a in Audience],
            opens=opens, closes=closes + timedelta(days=365), gpu_hours=100000, max_request=10, period_months=12,
            review_required=False, startup=True,
        ),
        check_call_spec(
            name="2027-industry", title="Industry and SME GPU call 2027", audiences="startup,sme,industry",
            opens=opens, closes=closes, gpu_hours=5000, max_request=500, period_months=12, review_required=True,
        ),
    ]  # fmt: skip


def seed_calls(ledger: Ledger, say=print) -> None:
    existing = {call.name for call in ledger.calls()}
    for spec in demo_calls(date.today()):
        if spec.name not in existing:
            ledger.create_call(spec, who=SEEDED_BY)
            say(f"ledger: call {spec.name} ({spec.title})")


def seed_ledger(db_url: str, cluster: str, say=print) -> None:
    upgrade(db_url)
    with Ledger(db_url, cluster=cluster) as ledger:
        existing = {project.name for project in ledger.projects()}
        for name, (account, kind, gpu_hours, members) in DEMO_PROJECTS.items():
            if name in existing:
                continue
            if kind == "course":
                today = date.today()
                ledger.create_course(
                    name, account=account, start=today - timedelta(days=7), end=today + timedelta(days=120),
                    gpu_hours=gpu_hours, rules=make_rules(**DEMO_COURSE_RULES), who=SEEDED_BY,
                )  # fmt: skip
                ledger.import_roster(name, parse_roster_csv(DEMO_ROSTER_CSV)[0], who=SEEDED_BY)
            else:
                ledger.create_project(name, account=account, kind=kind, gpu_hours=gpu_hours, who=SEEDED_BY)
            for user, (role, cap) in members.items():
                ledger.add_member(name, user, role=role, who=SEEDED_BY, cap_gpu_hours=cap)
            say(f"ledger: project {name} ({gpu_hours} GPU-h) with {', '.join(members)}")
        seed_calls(ledger, say)


__all__ = ["seed_ledger", "DEMO_PROJECTS", "NotFound"]
