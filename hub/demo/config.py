"""JupyterHub configuration of the demo (demo mode only).

``hpchub demo up`` writes ``jupyterhub_config.py`` that calls
:func:`configure_demo` with the demo's settings file. Demo-only parts are
marked: an http identity provider on loopback, generated secrets and the
test service token.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import spawners.slurm.api  # noqa: F401  (replace batchspawner's unsafe handler before routes are built)
from hub.api.config import configure_api
from hub.metrics import register_ledger_metrics
from hub.pages import configure_pages

TEST_SERVICE = "hpchub-test"


def configure_demo(c, settings_path: str) -> None:
    settings = json.loads(Path(settings_path).read_text())
    state = Path(settings["state_dir"])
    hub_dir = state / "hub"

    c.JupyterHub.bind_url = f"http://127.0.0.1:{settings['hub_public_port']}"
    c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{settings['hub_api_port']}"
    # What the compute nodes use to reach the hub (on one host: loopback).
    c.JupyterHub.hub_connect_url = f"http://127.0.0.1:{settings['hub_api_port']}"
    c.JupyterHub.db_url = f"sqlite:///{hub_dir / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(hub_dir / "jupyterhub_cookie_secret")
    # DEMO ONLY: the generated secrets and the http identity provider (hub/site_secrets.py).
    c.HPCHubSite.demo_mode = True
    c.JupyterHub.pid_file = str(state / "run" / "jupyterhub.real.pid")
    # The proxy is its own process (started by `hpchub demo up`): routes survive hub restarts.
    c.ConfigurableHTTPProxy.should_start = False
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{settings['proxy_api_port']}"
    c.ConfigurableHTTPProxy.auth_token = (hub_dir / "proxy_token").read_text().strip()
    c.JupyterHub.cleanup_servers = False
    c.JupyterHub.cleanup_proxy = False

    c.JupyterHub.allow_named_servers = True
    c.JupyterHub.named_server_limit_per_user = int(settings.get("named_server_limit", 2))

    # Institutional login through the demo's own OpenID Connect provider on loopback.
    c.JupyterHub.authenticator_class = "hpchub-oidc"
    c.HPCHubOIDCAuthenticator.issuer = settings["issuer"]
    c.HPCHubOIDCAuthenticator.allow_insecure_issuer = True  # DEMO ONLY: http on loopback
    c.HPCHubOIDCAuthenticator.client_id = "hpchub"
    c.HPCHubOIDCAuthenticator.client_secret = Path(settings["oidc_client_secret_file"]).read_text().strip()
    c.HPCHubOIDCAuthenticator.oauth_callback_url = f"http://127.0.0.1:{settings['hub_public_port']}/hub/oauth_callback"
    # inst.example: a second allowed institution (the reviewer rev1's)
    c.HPCHubOIDCAuthenticator.scoped_domains = {"uni.example": {}, "inst.example": {}}
    c.HPCHubOIDCAuthenticator.allowed_groups = {"hpc-users"}
    c.HPCHubOIDCAuthenticator.admin_groups = {"hpc-admins"}
    c.HPCHubOIDCAuthenticator.slurm_conf = settings["slurm_conf"]
    c.HPCHubOIDCAuthenticator.apply_url = "https://hpc.uni.example/apply"
    c.JupyterHub.redirect_to_server = False  # after login: the home page (sessions, or the no-account page)
    # A site's own templates (e.g. spawn_form.html) go first, as a site's template_paths would have them.
    site_templates = hub_dir / "site-templates"
    c.JupyterHub.template_paths = [*([str(site_templates)] if site_templates.is_dir() else []), settings["templates"]]
    configure_pages(c, apply_url="https://hpc.uni.example/apply")

    # The GPU-hour ledger (budgets, holds, charges), shared by the spawner, the API and the reconciler.
    c.HPCHubLedger.db_url = settings["ledger_url"]
    c.HPCHubLedger.cluster = settings["cluster_name"]
    c.HPCHubLedger.orphan_grace = float(settings.get("orphan_grace", 120))
    c.HPCHubLedger.sqlite_busy_timeout = float(settings.get("ledger_busy_timeout", 30))
    # The idle stop (`demo up --idle-timeout`): in the configuration, not only on the root reconciler's
    # command line, so the reconciler of `--run-as` (its unit reads this file) and `hpchub doctor` see it.
    c.HPCHubLedger.idle_timeout_minutes = float(settings.get("idle_timeout", 30))
    register_ledger_metrics(c)  # per-project GPU-hours and sessions on /hub/metrics

    # Mail (budget and period warnings, allocations) goes to the demo's own SMTP server on loopback
    # (hub/demo/mailserver.py), which keeps each message as STATE/mail/NNNNNN.eml. DEMO ONLY: no TLS, no login.
    c.HPCHubMail.smtp_host = "127.0.0.1"
    c.HPCHubMail.smtp_port = int(settings.get("smtp_port", 8025))
    c.HPCHubMail.from_address = "hpchub@demo.example"
    c.HPCHubMail.portal_url = f"http://127.0.0.1:{settings['hub_public_port']}"
    c.HPCHubMail.timeout = 10.0

    c.JupyterHub.services = []
    c.JupyterHub.spawner_class = "slurm-gpu"
    c.SlurmGPUSpawner.slurm_conf = settings["slurm_conf"]
    c.SlurmGPUSpawner.job_name = settings["job_name"]
    c.SlurmGPUSpawner.catalogue_file = settings["catalogue_file"]
    # The PyTorch entries are for the site to build: unset here, so the form shows them disabled.
    c.SlurmGPUSpawner.catalogue_variables = {"demo_venv": settings["venv"], "pytorch_venv": "", "pytorch_image": ""}
    c.SlurmGPUSpawner.status_interval = float(settings.get("status_interval", 30))
    c.SlurmGPUSpawner.pending_status_interval = float(settings.get("pending_status_interval", 0.5))
    # Lab hours switched on from the course page reserve the a100 node (the hub runs scontrol
    # create reservation: here as root; at a site its service account must be a Slurm operator).
    c.HPCHubCourses.lab_hours_nodes = ["gpu03"]
    # An instructor of a course (dave) may create another one from the page, with up to 500 GPU-h.
    c.HPCHubAPI.instructor_course_max_gpu_hours = 500

    # Project spaces and environments: the demo runs as root, so it makes the
    # projects' Unix groups itself; build jobs install only from the demo's wheelhouse.
    c.HPCHubEnvironments.project_root = settings.get("project_root", str(state / "projects"))
    c.HPCHubEnvironments.wheelhouse = settings.get("wheelhouse", str(state / "wheelhouse"))
    c.HPCHubEnvironments.published_root = settings.get("published_root", str(state / "published"))
    c.HPCHubEnvironments.slurm_conf = settings["slurm_conf"]
    c.HPCHubEnvironments.manage_unix_groups = True

    # Allocations: awards make accounts under root; a new member's Unix account is made by the
    # demo's own provisioning hook (a site's identity management does this in production);
    # proposals' PDFs are kept outside every served directory.
    c.HPCHubAllocations.slurm_parent_account = "root"
    c.HPCHubAllocations.provision_command = [sys.executable, "-m", "hub.demo.provision"]
    c.HPCHubAllocations.attachment_dir = str(state / "attachments")
    c.Spawner.default_url = "/lab"
    c.Spawner.environment = {"LANG": "C.UTF-8"}

    # The reconciler (`hpchub reconcile`: final charges from sacct, outside jobs, the Slurm
    # mirror, stopping sessions whose budget is used up or that sit idle) runs as its own daemon started by
    # `hpchub demo up` (pid file), like the proxy: it outlives hub restarts and is never
    # started twice. The hub knows it as an external service with this token and scope.
    c.JupyterHub.services.append(
        {"name": "hpchub-reconcile", "api_token": (hub_dir / "reconcile_token").read_text().strip()},
    )

    # DEMO ONLY: a service whose token the tests read, with the narrowest scopes that serve.
    c.JupyterHub.services.append(
        {"name": TEST_SERVICE, "api_token": (hub_dir / "service_token").read_text().strip()},
    )
    c.JupyterHub.load_roles = [
        {
            "name": "hpchub-test-driver",
            "description": "demo/tests only: start, stop and reach users' servers",
            "scopes": ["servers", "read:users:name", "read:servers", "access:servers"],
            "services": [TEST_SERVICE],
        },
        {
            "name": "hpchub-reconcile",
            "description": "stops servers whose project budget or member cap is used up, or that sit idle (it reads "
            "the activity the sessions report themselves: it never reaches into a user's server)",
            "scopes": ["delete:servers"],
            "services": ["hpchub-reconcile"],
        },
    ]
    configure_api(c)  # the ledger REST API: handlers, custom scopes, the user role's grants

    if settings.get("run_as", "root") != "root":
        # `hpchub demo up --run-as ACCOUNT` (hub/demo/service.py): the hub is a service account. Its pid file
        # lives beside its state. The account cannot make the projects' Unix groups: `demo up` (root) makes
        # them, with the account in each (hub_account), before the hub starts with those groups.
        c.JupyterHub.pid_file = str(hub_dir / "jupyterhub.real.pid")
        c.HPCHubEnvironments.manage_unix_groups = False
        c.HPCHubEnvironments.hub_account = settings["run_as"]
