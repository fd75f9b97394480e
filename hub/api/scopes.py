"""The ledger API's custom JupyterHub scopes, and the scopes a notebook server's own token gets.

A leaf: the handlers name the scopes they need, ``config.configure_api`` registers them with
the hub; neither imports the other for them.
"""

from __future__ import annotations

READ_SCOPE = "custom:hpchub:read"
MANAGE_SCOPE = "custom:hpchub:manage"
HPCHUB_SCOPES: dict[str, dict] = {
    READ_SCOPE: {
        "description": "Read the GPU-hour budgets, members and charges of your projects "
        "(as far as your role in each project allows) and preview what a session would cost.",
    },
    MANAGE_SCOPE: {
        "description": "Add and remove members and change caps in projects you manage "
        "(as far as your role in each project allows).",
        "subscopes": [READ_SCOPE],
    },
}
SESSION_SCOPE = "custom:hpchub:session"
EXTEND_SCOPE = "custom:hpchub:extend"
HPCHUB_SCOPES[SESSION_SCOPE] = {
    "description": "Read your notebook servers' sessions: project, job, node, start and end, cost so far and "
    "held GPU-hours. A server's own token gets it for that server only.",
}
HPCHUB_SCOPES[EXTEND_SCOPE] = {
    "description": "Extend your running notebook servers' time limits, charged to the project's GPU-hour budget.",
    "subscopes": [SESSION_SCOPE],
}
ACTIVITY_SCOPE = "custom:hpchub:report-activity"
HPCHUB_SCOPES[ACTIVITY_SCOPE] = {
    "description": "Report what your notebook servers are doing (kernels and terminals at work, your last "
    "activity, GPU use) for the idle stop. A server's own token gets it for that server only.",
}
APPLY_SCOPE = "custom:hpchub:apply"
REVIEW_SCOPE = "custom:hpchub:review"
MANAGE_CALLS_SCOPE = "custom:hpchub:manage-calls"
HPCHUB_SCOPES[APPLY_SCOPE] = {
    "description": "Read the open allocation calls, write, submit and withdraw your own proposals, read their "
    "decisions, and file the outcome reports of projects you lead.",
}
HPCHUB_SCOPES[REVIEW_SCOPE] = {
    "description": "Read the proposals you are assigned to review (unless you have a conflict of interest with "
    "them), score them and declare a conflict.",
}
HPCHUB_SCOPES[MANAGE_CALLS_SCOPE] = {
    "description": "Create and close allocation calls, read every proposal with its reviews, assign reviewers and "
    "decide (award, reject, return).",
    "subscopes": [APPLY_SCOPE],
}
USER_SCOPES = (READ_SCOPE, MANAGE_SCOPE, SESSION_SCOPE, EXTEND_SCOPE, ACTIVITY_SCOPE, APPLY_SCOPE)
# Roles configure_api adds: the reviewers' and call managers' groups (and the admins) get these scopes.
REVIEWER_ROLE = "hpchub-reviewer"
CALL_MANAGER_ROLE = "hpchub-call-manager"
# JupyterHub 6's default for the server token ($JUPYTERHUB_API_TOKEN): the built-in
# ``server`` role's scopes. Ours adds reading the server's own session (never extending) and
# reporting its own activity.
DEFAULT_SERVER_TOKEN_SCOPES = ("users:activity!user", "access:servers!server")
OWN_SERVER_SCOPES = (f"{SESSION_SCOPE}!server", f"{ACTIVITY_SCOPE}!server")
SERVER_TOKEN_SCOPES = (*DEFAULT_SERVER_TOKEN_SCOPES, *OWN_SERVER_SCOPES)
