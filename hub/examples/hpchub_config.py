# /etc/hpchub/hpchub_config.py -- an annotated example of hpchub's configuration at a centre.
#
# Write it with `hpchub deploy config --output /etc/hpchub/hpchub_config.py`, then change every
# value marked SITE. It is a JupyterHub configuration file (traitlets): the hub reads it
# (`jupyterhub -f /etc/hpchub/hpchub_config.py`, the hpchub.service unit), and so do
# `hpchub doctor`, `hpchub reconcile` and the ledger commands (`hpchub --config ...`).
# Every name set on `c.` below is a real configurable (a unit test loads this file and checks
# each one, so it cannot drift); each one's help text (`jupyterhub --help-all`) gives its unit,
# default and an example. Check the result with `hpchub doctor --test-job`.
#
# Files beside this one (secrets: mode 0600, owned by root or the hub's account, which must be
# able to read them; hpchub refuses a secret file others can read):
#   hpchub_config.py        this file (root:hpchub 0640)
#   catalog.toml            the notebook environments (images/catalog.toml format)
#   accounts.json           optional: principal -> Unix account exceptions
#   cookie_secret           `openssl rand -hex 32`
#   oidc_client_secret      the client secret the identity provider issued for the hub
#   reconcile_token         `openssl rand -hex 32`: the reconciler's API token (reconcile.env has it too)
#   hub.env                 JUPYTERHUB_CRYPT_KEY=... and CONFIGPROXY_AUTH_TOKEN=... (the unit reads it)
#   tls/hub.crt, tls/hub.key  only when the hub terminates TLS itself (see "TLS" below)

from pathlib import Path

import spawners.slurm.api  # noqa: F401  (replaces batchspawner's unsafe handler before routes are built)
from hub.api.config import configure_api
from hub.metrics import register_ledger_metrics
from hub.pages import configure_pages
from hub.site_secrets import read_secret_file

ETC = Path(__file__).resolve().parent  # /etc/hpchub
PUBLIC_URL = "https://hub.uni.example"  # SITE: what users type in the browser

c = get_config()  # noqa: F821  (provided by JupyterHub's config loader)

# --- Addresses, proxy, TLS -----------------------------------------------------------------
# The proxy (hpchub-proxy.service, its own process so routes survive hub restarts) listens
# publicly; the hub itself listens on loopback for the proxy and on an address the compute
# nodes reach (their single-user servers call the hub's API there).
# TLS (docs/operations.md, "TLS"): either a reverse proxy (nginx) terminates it and forwards to the
# proxy on loopback ...
c.JupyterHub.bind_url = "http://127.0.0.1:8000"
# ... or the proxy terminates it with the site's certificate files: the same paths here (for
# `hpchub doctor`) and in `hpchub deploy units --tls-cert ... --tls-key ...` (the proxy's unit).
# c.JupyterHub.bind_url = "https://0.0.0.0:8443"
# c.JupyterHub.ssl_cert = str(ETC / "tls" / "hub.crt")   # the full chain, PEM
# c.JupyterHub.ssl_key = str(ETC / "tls" / "hub.key")    # mode 0600, owned by the hub's account
c.JupyterHub.hub_bind_url = "http://0.0.0.0:8081"
c.JupyterHub.hub_connect_url = "http://hub-internal.uni.example:8081"  # SITE: reachable from every compute node
c.ConfigurableHTTPProxy.should_start = False  # hpchub-proxy.service runs it
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:8001"  # the token: CONFIGPROXY_AUTH_TOKEN in hub.env
c.JupyterHub.cleanup_servers = False  # notebooks are Slurm jobs: they outlive hub restarts
c.JupyterHub.cleanup_proxy = False

# --- Secrets -----------------------------------------------------------------------------
c.JupyterHub.cookie_secret_file = str(ETC / "cookie_secret")
# JUPYTERHUB_CRYPT_KEY (hub.env) encrypts the identity provider's tokens in the auth state.
c.HPCHubSite.demo_mode = False  # the default: demo secrets and an http identity provider are refused

# --- Databases: JupyterHub's and the projects' ledger (GPU-hour budgets) --------------------
# SQLite works for one hub; PostgreSQL is the production choice (`hpchub db upgrade` migrates,
# the hub also migrates at start; backups: `hpchub ledger export` or pg_dump).
c.JupyterHub.db_url = "postgresql+psycopg://hpchub@db.uni.example/jupyterhub"  # SITE
c.HPCHubLedger.db_url = "postgresql+psycopg://hpchub@db.uni.example/hpchub"  # SITE: the projects database
# c.HPCHubLedger.db_url = "sqlite:////var/lib/hpchub/ledger.sqlite"          # the embedded choice
c.HPCHubLedger.sqlite_busy_timeout = 30  # seconds (SQLite only)

# --- The cluster -------------------------------------------------------------------------
c.JupyterHub.spawner_class = "slurm-gpu"  # sessions are Slurm jobs submitted as the user (sudo rules)
c.HPCHubLedger.cluster = "hpc"  # SITE: Slurm's ClusterName (charges are keyed by cluster and job id)
# Every Slurm command of the hub, the reconciler, the command line and the doctor (c.SlurmCluster;
# the older c.SlurmGPUSpawner.slurm_conf, slurm_bin_dir, slurm_command_timeout still set it).
c.SlurmCluster.slurm_conf = "/etc/slurm/slurm.conf"
c.SlurmCluster.bin_dir = "/usr/bin"  # where sbatch, squeue, scancel live (the sudoers file names them)
c.SlurmCluster.command_timeout = 30  # seconds
c.SlurmGPUSpawner.job_name = "hpchub-jupyter"  # the watcher asks squeue for this name only
c.SlurmGPUSpawner.status_interval = 30  # seconds between squeue calls while every job runs (one call for all)
c.SlurmGPUSpawner.pending_status_interval = 2  # seconds while any job is pending
c.SlurmGPUSpawner.cluster_info_ttl = 300  # seconds the partitions and GPUs read from sinfo are reused

# --- Partitions ----------------------------------------------------------------------------
# The spawn form offers Slurm's own partitions, their time limits and the GPU types their nodes
# have (sinfo); a project's Slurm account decides which partitions it may use. Adding a
# partition is a slurm.conf change (docs/operations.md): give GPU partitions the
# TRESBillingWeights below and CPU-only ones TRESBillingWeights="CPU=0".
c.SlurmGPUSpawner.default_hours = 1  # hours asked when a request names none (a multiple of 0.25)
c.SlurmGPUSpawner.extra_sbatch = ["--mem-per-gpu=32G"]  # SITE: trusted #SBATCH lines for every session
c.HPCHubEnvironments.build_partition = "cpu"  # SITE: where environment builds run (no GPUs)
c.HPCHubCourses.lab_hours_nodes = ["gpu17", "gpu18"]  # SITE: what a course's lab hours reserve
c.HPCHubCourses.lab_hours_max_minutes = 240

# --- GPU types and their weights ------------------------------------------------------------
# GPU-hours charged per hour of one GPU of each type (decimal strings), and Slurm billing units
# per weighted GPU-minute: every GPU partition's TRESBillingWeights must be weight x units
# (here "GRES/gpu:h200=2,GRES/gpu:a100=1"); `hpchub doctor` checks that they agree.
c.HPCHubLedger.gpu_weights = {"h200": "1.0", "a100": "0.5"}  # SITE: every GPU type of the cluster
c.HPCHubLedger.billing_units_per_weighted_gpu_minute = 2
c.HPCHubLedger.orphan_grace = 120  # seconds before an untracked hpchub: job is cancelled by the reconciler
# Stop sessions idle this many minutes (no cell or terminal command running, no user activity, GPUs
# below idle_gpu_busy_percent or unknown); warned at half; the project pays only until the stop. 0 = off.
c.HPCHubLedger.idle_timeout_minutes = 30
c.HPCHubLedger.idle_gpu_busy_percent = 5

# --- Identity provider (OpenID Connect) ------------------------------------------------------
c.JupyterHub.authenticator_class = "hpchub-oidc"
c.HPCHubOIDCAuthenticator.issuer = "https://login.uni.example/realms/staff"  # SITE: https only
c.HPCHubOIDCAuthenticator.client_id = "hpchub"  # SITE
c.HPCHubOIDCAuthenticator.client_secret = read_secret_file(ETC / "oidc_client_secret")
c.HPCHubOIDCAuthenticator.oauth_callback_url = f"{PUBLIC_URL}/hub/oauth_callback"
# SITE: the claim holding user@institution. preferred_username is user-editable at many providers: prefer an
# attribute the institution controls (eduPersonPrincipalName), or map_by_subject = True (docs/login.md).
c.HPCHubOIDCAuthenticator.principal_claim = "preferred_username"

# --- Mapping rules: who may log in, and as which Unix account --------------------------------
# alice@uni.example -> alice; b-carol for carol@partner.example; exceptions in accounts.json.
c.HPCHubOIDCAuthenticator.scoped_domains = {"uni.example": {}, "partner.example": {"prefix": "b-"}}  # SITE
c.HPCHubOIDCAuthenticator.account_map_file = str(ETC / "accounts.json")  # {"principal": "account"}
c.HPCHubOIDCAuthenticator.allowed_groups = {"hpc-users"}  # SITE: identity-provider groups
c.HPCHubOIDCAuthenticator.admin_groups = {"hpc-admins"}  # SITE: portal administrators
c.HPCHubOIDCAuthenticator.course_group_roles = {  # IdP groups that make course members at login
    "{course}-students": "student", "{course}-tas": "ta", "{course}-instructors": "instructor",
}  # fmt: skip
c.HPCHubOIDCAuthenticator.cluster_account_check = True  # a Unix user and a Slurm association, or the apply page
c.HPCHubOIDCAuthenticator.apply_url = "https://hpc.uni.example/apply"  # SITE
# Never root, the service account or a system account, whatever the mapping gives (login and every spawn);
# the account the hub runs as is always added. Keep root in the list (hpchub doctor fails without).
c.HPCHubAccountRules.denied_accounts = {"root", "hpchub", "nobody"}
c.HPCHubAccountRules.minimum_uid = 1000  # SITE: the lowest UID of the site's users
c.HPCHubAPI.ta_cap_limit_gpu_hours = 10  # highest cap (GPU-hours) a TA may give a student

# --- Notebook environments and project spaces --------------------------------------------------
c.SlurmGPUSpawner.catalogue_file = str(ETC / "catalog.toml")
c.SlurmGPUSpawner.catalogue_variables = {  # SITE: the {placeholders} in catalog.toml
    "demo_venv": "/shared/hpchub/envs/default", "pytorch_venv": "/shared/hpchub/envs/pytorch",
    "pytorch_image": "/shared/hpchub/images/pytorch.sif",
}  # fmt: skip
c.SlurmGPUSpawner.job_output = "{home}/.hpchub-jupyter-%j.log"
c.HPCHubEnvironments.project_root = "/shared/projects"  # SITE: the environments root (PROJECT_ROOT/P)
c.HPCHubEnvironments.wheelhouse = "/shared/hpchub/wheelhouse"  # SITE: the only package source of builds
c.HPCHubEnvironments.base_python = "/usr/bin/python3.11"
c.HPCHubEnvironments.manage_unix_groups = False  # the site's identity management makes the hpc-P groups
c.HPCHubEnvironments.hub_account = "hpchub"  # SITE: the hub's account; make it a member of each hpc-P
# group too (it reads envs/ there) and restart the hub after it joins a new project's group
c.Spawner.default_url = "/lab"
c.Spawner.environment = {"LANG": "C.UTF-8"}

# --- Named servers, pages ------------------------------------------------------------------
c.JupyterHub.allow_named_servers = True
c.JupyterHub.named_server_limit_per_user = 2
c.JupyterHub.redirect_to_server = False
c.JupyterHub.template_paths = ["/opt/hpchub/venv/share/hpchub/templates"]  # the wheel installs them here
c.HPCHubPages.chart_cache_seconds = 30
c.HPCHubPages.recent_sessions = 20

# --- The reconciler (hpchub-reconcile.service): final charges, outside jobs, budget stops --------
c.JupyterHub.services = [{"name": "hpchub-reconcile", "api_token": read_secret_file(ETC / "reconcile_token")}]
c.JupyterHub.load_roles = [{
    "name": "hpchub-reconcile",
    "description": "stops servers whose project budget or member cap is used up, or that sit idle",
    # Only stopping servers: the sessions report their own activity to the hub (never give this
    # role access:servers, tokens or admin:users: `hpchub doctor` fails on them).
    "scopes": ["delete:servers"],
    "services": ["hpchub-reconcile"],
}]  # fmt: skip

# --- Mail: budget and period warnings (the reconciler sends what the portal queued) -------------
c.HPCHubMail.smtp_host = "smtp.uni.example"  # SITE: the relay ('' = mail stays queued; the doctor warns)
c.HPCHubMail.smtp_port = 587
c.HPCHubMail.starttls = True
c.HPCHubMail.from_address = "hpc-portal@uni.example"  # SITE
c.HPCHubMail.portal_url = "https://hpc.uni.example"  # links in mail
# c.HPCHubMail.smtp_user = "hpchub"; c.HPCHubMail.smtp_password = read_secret_file(ETC / "smtp_password")
c.HPCHubAllocations.data_grace_days = 90  # days after a project's end before its space is listed for archiving

# --- hpchub's pages, API and metrics (keep these last) ------------------------------------------
configure_pages(c, apply_url="https://hpc.uni.example/apply")
register_ledger_metrics(c)  # per-project GPU-hours on /hub/metrics
configure_api(c)
