"""The demo's projects, budgets and members in the ledger (the contract's table). Idempotent."""

from __future__ import annotations

from .ledger import Ledger, NotFound, upgrade

# project -> (Slurm account, kind, GPU-hours, members: user -> (role, cap or None))
DEMO_PROJECTS: dict[str, tuple[str, str, str, dict[str, tuple[str, str | None]]]] = {
    "vision-lab": ("vision-lab", "research", "100", {"alice": ("pi", None), "bob": ("member", "20")}),
    "cs101": ("cs101", "course", "50", {"dave": ("instructor", None), "tom": ("ta", None),
                                         "carol": ("student", "5")}),
    "tiny-lab": ("tiny-lab", "research", "0.25", {"erin": ("pi", None)}),
}
SEEDED_BY = "hpchub-demo"


def seed_ledger(db_url: str, cluster: str, say=print) -> None:
    upgrade(db_url)
    with Ledger(db_url, cluster=cluster) as ledger:
        existing = {project.name for project in ledger.projects()}
        for name, (account, kind, gpu_hours, members) in DEMO_PROJECTS.items():
            if name in existing:
                continue
            ledger.create_project(name, account=account, kind=kind, gpu_hours=gpu_hours, who=SEEDED_BY)
            for user, (role, cap) in members.items():
                ledger.add_member(name, user, role=role, who=SEEDED_BY, cap_gpu_hours=cap)
            say(f"ledger: project {name} ({gpu_hours} GPU-h) with {', '.join(members)}")


__all__ = ["seed_ledger", "DEMO_PROJECTS", "NotFound"]
