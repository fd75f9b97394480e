"""SlurmGPUSpawner: a thin JupyterHub class over the pure modules beside it.

Built on batchspawner's SlurmSpawner (its single-user wrapper, its traits and
its place in the ecosystem), but with none of its unsafe paths:

* ``user_options`` are validated by allowlist into a :class:`JobRequest`
  (:mod:`.options`), against one :class:`RequestContext` per request
  (:mod:`.request_context`; the form and ``POST /preview`` use the same), in
  JupyterHub's ``apply_user_options`` hook; the script is rendered from that
  alone (:mod:`.script`), never from raw options.
* Slurm commands run as argv lists with a timeout (:mod:`.client`), never a shell.
* Job state comes from one shared :class:`JobWatcher` (:mod:`.watcher`): one
  ``squeue`` per interval for every portal job. A failed query means UNKNOWN,
  never "job gone".
* The single-user server reports its port through :mod:`.api`, which accepts
  only ``{"port": N}`` from the server's own token while it is starting.
* The ledger link (admission, job id, the session's end, a course's lab hours) and the
  spawn form's hooks are mixins (:mod:`.ledger_link`, :mod:`.form_hooks`); every
  configurable trait is on this class.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import os
import pwd
import time
from datetime import datetime, timezone

from batchspawner import SlurmSpawner
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import object_session
from traitlets import Dict, Float, Integer, List, Unicode, default

from hpchub_notebook.activity_logic import (
    REPORT_INTERVAL_VARIABLE as ACTIVITY_REPORT_VARIABLE,
)
from hub.auth.account_rules import AccountDenied
from hub.envs.config import HPCHubEnvironments
from hub.ledger import Ledger, LedgerError
from hub.ledger.runtime import HPCHubLedger, ledger_for
from hub.metrics import observe_scheduler_call
from spawners import safe_fs
from spawners.catalog import Catalogue, load_catalogue
from spawners.slurm import (
    api,  # noqa: F401  (installs the safe /hub/api/batchspawner handler)
    project_envs,
)
from spawners.slurm import progress as words
from spawners.slurm.client import (
    SLURM_COMMANDS,
    SlurmClient,
    SlurmCommandError,
    subprocess_runner,
)
from spawners.slurm.cluster import SlurmCluster
from spawners.slurm.cluster_parsers import parse_node_addresses, parse_sinfo
from spawners.slurm.errors import (
    SlurmNotAnswering,
    SpawnError,
    quiet_handled_errors,
    slurm_not_answering,
)  # fmt: skip
from spawners.slurm.form_hooks import (  # noqa: F401  (FORM_RETRY_SECONDS, NO_CLUSTER_ACCOUNT_GROUP: re-exported)
    _FORM_RETRY,
    FORM_RETRY_SECONDS,
    NO_CLUSTER_ACCOUNT_GROUP,
    FormHooks,
)  # fmt: skip
from spawners.slurm.launch import LaunchError, launch_for
from spawners.slurm.ledger_link import LedgerLink
from spawners.slurm.progress import ProgressEvent, parse_slurm_time
from spawners.slurm.refused_traits import check_apply_user_options, check_spawner_config
from spawners.slurm.request_hooks import (
    _CACHE,
    RequestHooks,
    _apply_validated_options,
    _count_spawn,
)
from spawners.slurm.reservations import forget_reservation
from spawners.slurm.script import ScriptError, job_comment, render_batch_script
from spawners.slurm.types import ClusterInfo, JobRequest, JobState, JobStatus
from spawners.slurm.watcher import JobWatcher, get_shared_watcher

STATE_VERSION = 1


async def metered_runner(argv, *, input=None, env=None, timeout=30.0):
    """subprocess_runner, counted and timed per Slurm command for /hub/metrics."""

    command = next((os.path.basename(a) for a in argv if os.path.basename(a) in SLURM_COMMANDS), "other")
    started = time.monotonic()
    ok = False
    try:
        result = await subprocess_runner(argv, input=input, env=env, timeout=timeout)
        ok = result.returncode == 0
        return result
    finally:
        observe_scheduler_call(command, time.monotonic() - started, ok)


class SlurmGPUSpawner(RequestHooks, LedgerLink, FormHooks, SlurmSpawner):
    """Launch each notebook server as a Slurm job on a GPU node."""

    # batchspawner's request templates, commands and state regexes are not read: setting one is refused
    # (spawners/slurm/refused_traits.py), at the hub's start and whenever a spawner is built.
    refuses_batchspawner_settings = True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        check_spawner_config(self.config, type(self))
        check_apply_user_options(self.apply_user_options, _apply_validated_options)

    # ----- configuration -----
    slurm_conf = Unicode(
        "",
        help="Deprecated: set c.SlurmCluster.slurm_conf. Still honoured: it sets the cluster's slurm_conf where "
        "c.SlurmCluster does not (and, set, wins for the spawner). Path of slurm.conf (SLURM_CONF). Default '' "
        "(Slurm's own). Example: '/etc/slurm/slurm.conf'.",
    ).tag(config=True)
    slurm_bin_dir = Unicode(
        "",
        help="Deprecated: set c.SlurmCluster.bin_dir. Still honoured like slurm_conf. Directory holding sbatch, "
        "squeue, ... Default '' (found on PATH). Example: '/opt/slurm/bin'.",
    ).tag(config=True)
    slurm_command_timeout = Float(
        30.0,
        help="Deprecated: set c.SlurmCluster.command_timeout. Still honoured like slurm_conf. Seconds before a "
        "Slurm command is given up (and reported). Default 30. Example: 60.",
    ).tag(config=True)
    job_name = Unicode(
        help="Slurm job name of every portal job: the watcher asks `squeue --name=` this. "
        "Default '<c.SlurmCluster.job_name_prefix>-jupyter', i.e. 'hpchub-jupyter'.",
    ).tag(config=True)

    @default("job_name")
    def _default_job_name(self) -> str:
        return self.cluster.default_job_name

    status_interval = Float(
        30.0,
        help="Seconds between the watcher's squeue calls while all jobs run (one call for all jobs). "
        "Default 30. Example: 60.",
    ).tag(config=True)
    pending_status_interval = Float(
        0.5,
        help="Seconds between squeue calls while any job is pending or starting (one call for all). "
        "Default 0.5, batchspawner's cadence per pending spawn, so a spawn sees its job start as soon as "
        "stock batchspawner does (benchmarks/scale.py). Example: 2.",
    ).tag(config=True)
    gone_after = Float(
        60.0,
        help="Seconds a job must be listed by neither squeue nor sacct before it counts as gone. Default 60.",
    ).tag(config=True)
    cluster_info_ttl = Float(
        300.0, help="Seconds the partitions and GPUs read from sinfo are cached. Default 300."
    ).tag(config=True)
    accounts_ttl = Float(60.0, help="Seconds a user's Slurm accounts (sacctmgr) are cached. Default 60.").tag(
        config=True
    )
    catalogue_file = Unicode(
        "",
        help="Path of the environment catalogue (images/catalog.toml format). Required. "
        "Example: '/etc/hpchub/catalog.toml'.",
    ).tag(config=True)
    catalogue_variables = Dict(
        {},
        help="Values for {placeholders} in the catalogue's paths. Default {}. "
        "Example: {'demo_venv': '/opt/hpchub/venv'}.",
    ).tag(config=True)
    default_hours = Float(1.0, help="Hours requested when the options name none (a multiple of 0.25). Default 1.").tag(
        config=True
    )
    job_output = Unicode(
        "{home}/.hpchub-jupyter-%j.log",
        help="The job's log file; {home} is the user's home, %j the job id (Slurm). "
        "Default '{home}/.hpchub-jupyter-%j.log'.",
    ).tag(config=True)
    activity_report_seconds = Integer(
        60,
        help="Seconds between a session's reports of what it is doing (kernels and terminals at work, the last "
        "user activity, GPU use), which it posts to the hub with its own server token for the idle stop; a "
        "kernel's new request is reported at once as well. 0 = never (the idle stop then never stops it). From 0 "
        "to 3600. Default 60. Example: 30. Keep c.HPCHubLedger.idle_report_max_age_seconds at least twice this "
        "plus 30.",
    ).tag(config=True)
    log_tail_lines = Integer(
        15, help="Lines of the job's log shown to the user when a job fails before Jupyter answers. Default 15."
    ).tag(config=True)
    extra_sbatch = List(
        Unicode(),
        [],
        help="Extra trusted #SBATCH directives from the site, e.g. ['--mem-per-gpu=16G']. Default [].",
    ).tag(config=True)
    job_path = Unicode(
        "/usr/local/bin:/usr/bin:/bin",
        help="PATH in the job after the environment's bin directory. Default '/usr/local/bin:/usr/bin:/bin'.",
    ).tag(config=True)
    apptainer_command = Unicode(
        "apptainer",
        help="The Apptainer binary for catalogue entries of kind 'apptainer' (on the compute nodes). "
        "Default 'apptainer'. Example: '/usr/bin/apptainer'.",
    ).tag(config=True)

    @default("progress_ready_hook")
    def _progress_ready_hook_default(self):
        return words.cancelled_is_not_ready

    @default("start_timeout")
    def _start_timeout_default(self) -> int:
        return 600  # a job may pend; the user can cancel

    @default("http_timeout")
    def _http_timeout_default(self) -> int:
        return 120

    @default("poll_interval")
    def _poll_interval_default(self) -> int:
        # poll() only reads the shared watcher's cache: ask it as often as the watcher refreshes,
        # so that a job ended outside the portal is noticed within one status interval.
        return max(1, round(self.status_interval))

    # ----- runtime state -----
    job_request: JobRequest | None = None
    user_project_names: tuple[str, ...] = ()  # the user's projects at the last validation (JUPYTER_PATH)
    ledger_session: int | None = None  # the ledger's hold for this server's current job
    job_node: str = ""
    start_cancelled: bool = False  # the last start was cancelled (Stop on the progress page)
    accepts_port_report: bool = False
    # True from admission until the server answers; saved in the state, so that a hub that
    # stopped meanwhile (crash, kill -9) knows at restart that this start was interrupted.
    _starting: bool = False
    _port_event: asyncio.Event | None = None
    _progress_log: list[ProgressEvent] = []  # this start's events (a new list per start)

    # ----- shared helpers -----
    @functools.cached_property
    def cluster(self) -> SlurmCluster:
        """The hub's Slurm cluster (``c.SlurmCluster``); this spawner's own older settings, where set, win."""
        older = {"slurm_conf": "slurm_conf", "bin_dir": "slurm_bin_dir", "command_timeout": "slurm_command_timeout"}
        overrides = {trait: getattr(self, name) for trait, name in older.items()
                     if getattr(self, name) != self.trait_defaults(name)}  # fmt: skip
        return SlurmCluster.from_config(self.config, parent=self, **overrides)

    @property
    def client(self) -> SlurmClient:
        if getattr(self, "_client", None) is None:
            self._client = self.cluster.client(runner=metered_runner, log=self.log)
        return self._client

    @property
    def watcher(self) -> JobWatcher:
        cluster = self.cluster
        key = (cluster.slurm_conf, cluster.bin_dir, self.job_name)

        def make() -> JobWatcher:
            return JobWatcher(
                cluster.client(runner=metered_runner, log=self.log),
                job_name=self.job_name,
                interval=self.status_interval,
                fast_interval=self.pending_status_interval,
                gone_after=self.gone_after,
                log=self.log,
            )

        watcher = get_shared_watcher(key, make)
        watcher.start()
        return watcher

    def catalogue(self) -> Catalogue:
        """The catalogue and the published environments, read again whenever either file changes (admins
        edit the catalogue and publish without a restart)."""
        try:
            version = os.stat(self.catalogue_file).st_mtime_ns
        except OSError:
            version = None
        settings = self.environment_settings
        key = ("catalogue", self.catalogue_file, version, tuple(sorted(self.catalogue_variables.items())),
               project_envs.published_version(settings))  # fmt: skip
        cached = _CACHE.get(key)
        if cached is None:
            cached = project_envs.with_published(
                settings, load_catalogue(self.catalogue_file, self.catalogue_variables)
            )
            _CACHE.put(key, cached, 60)
        return cached  # type: ignore[return-value]

    async def cluster_info(self) -> ClusterInfo:
        key = ("sinfo", self.cluster.slurm_conf)
        cached = _CACHE.get(key)
        if cached is None:
            cached = parse_sinfo(await self.client.sinfo())
            _CACHE.put(key, cached, self.cluster_info_ttl)
        return cached  # type: ignore[return-value]

    async def node_address(self, node: str) -> str:
        key = ("nodeaddr", self.cluster.slurm_conf)
        cached = _CACHE.get(key)
        if cached is None or node not in cached:  # type: ignore[operator]
            cached = parse_node_addresses(await self.client.scontrol_show_node_addresses())
            _CACHE.put(key, cached, self.cluster_info_ttl)
        return cached.get(node) or node  # type: ignore[union-attr]

    @functools.cached_property
    def ledger_settings(self) -> HPCHubLedger:
        """The ledger's settings (``c.HPCHubLedger``), read once per spawner."""
        return HPCHubLedger(parent=self)

    @functools.cached_property
    def environment_settings(self) -> HPCHubEnvironments:
        """The project environments' settings (``c.HPCHubEnvironments``), read once per spawner."""
        return HPCHubEnvironments(parent=self)

    @property
    def ledger(self) -> Ledger | None:
        """The GPU-hour ledger (None when the site runs without budgets): the process's one per database."""
        return ledger_for(self.ledger_settings)

    # ----- user options -----
    @default("apply_user_options")
    def _apply_user_options_default(self):
        quiet_handled_errors(self.log)
        return _apply_validated_options

    @default("options_form")
    def _options_form_default(self):
        return self._render_options_form

    # ----- the job -----
    def job_env(self) -> dict[str, str]:
        env = self.get_env()
        env.pop("PATH", None)  # the script sets PATH from the environment's venv
        env.update(project_envs.job_variables(self.environment_settings, self.user_project_names))
        env[ACTIVITY_REPORT_VARIABLE] = str(self.activity_report_seconds)  # hpchub_notebook/activity.py reads it
        return env

    def render_script(self, request: JobRequest) -> str:
        settings = self.environment_settings
        home = pwd.getpwnam(self.user.name).pw_dir
        try:
            environment, default_kernel = project_envs.resolve(self.catalogue(), request)
            launch = launch_for(
                environment, self.get_args(), gpus=request.gpus, job_path=self.job_path,
                default_kernel=default_kernel, apptainer=self.apptainer_command,
                binds=project_envs.binds(settings, self.user_project_names),
            )  # fmt: skip
        except LaunchError as exc:
            raise SpawnError(str(exc)) from None
        return render_batch_script(
            request,
            job_name=self.job_name,
            comment=job_comment(self.user.name, self.name or ""),
            output_path=self.job_output.replace("{home}", home),
            workdir=home,
            export_vars=sorted(self.job_env()),
            command=launch.command,
            prologue=launch.prologue,
            extra_sbatch=self.extra_sbatch,
        )

    async def start(self):
        self.start_cancelled = False
        try:
            started = await self._start()
            _count_spawn("started")
            return started
        except BaseException as exc:
            self.start_cancelled = isinstance(exc, asyncio.CancelledError)  # Stop while starting
            self._starting = False
            _count_spawn(
                exc.reason
                if isinstance(exc, SpawnError)
                else "slurm"
                if isinstance(exc, SlurmNotAnswering)
                else "failed"
            )
            # Nothing may keep holding budget after a failed start (JupyterHub does not call
            # stop() for a server whose poll() already says it is not running).
            if self.job_id:
                try:
                    await self.client.scancel(self.job_id, as_user=self.user.name)
                except SlurmCommandError as exc:
                    self.log.warning("%s: scancel %s after a failed start: %s", self._log_name, self.job_id, exc)
            status = self.watcher.last_known(self.job_id) if self.job_id else None
            await self._ledger_session_ended(status)
            raise

    async def _start(self):
        request = self.job_request
        if request is None:  # apply_user_options always runs first; be safe anyway
            request = await self.validate_options(self.user_options or {})
        self.port = 0
        self.job_node = ""
        self._port_event = asyncio.Event()
        self.accepts_port_report = True
        # The demo makes the projects' Unix groups: a membership change reaches this job.
        await asyncio.to_thread(
            project_envs.sync_spaces, self.environment_settings, self.ledger, self.user_project_names
        )
        try:
            self.check_account_rules()  # the last gate before sudo -u USER sbatch
        except AccountDenied as exc:
            raise SpawnError(f"No server can start for {self.user.name}: {exc}.", reason="denied") from None
        try:
            script = self.render_script(request)
        except ScriptError as exc:
            raise SpawnError(f"refused to build the job script: {exc}") from None
        self._progress_log = []
        self._note_progress(words.PROGRESS_SUBMITTING, "Submitting the job to Slurm")
        try:
            try:
                self.job_id = await self.client.sbatch(script, as_user=self.user.name, extra_env=self.job_env())
            except SlurmCommandError as exc:
                if not (request.reservation and "reservation" in exc.stderr.lower()):
                    raise
                # The lab hours ended since the reservation was read (a cached read, or a race):
                # the session queues normally instead of failing.
                forget_reservation(self.client, request.reservation)
                self.log.info("%s: reservation %s is gone; submitting without it", self._log_name, request.reservation)
                request = self.job_request = dataclasses.replace(request, reservation=None)
                script = self.render_script(request)
                self.job_id = await self.client.sbatch(script, as_user=self.user.name, extra_env=self.job_env())
        except SlurmCommandError as exc:
            if slurm_not_answering(exc):
                raise SlurmNotAnswering(exc) from None
            raise SpawnError(f"Slurm refused the job: {exc.first_stderr_line or exc.summary}", reason="slurm") from None
        # Record the job id the moment sbatch returns: a hub crash now leaves no unknown job
        # (and a crash before this line leaves a tagged job no session records: the
        # reconciler cancels it, hub/ledger/orphans.py).
        self._save_state_now()
        await self._record_job_id()
        self.log.info("%s: submitted job %s (%s)", self._log_name, self.job_id, request)
        self._note_progress(words.PROGRESS_SUBMITTED, f"Submitted as Slurm job {self.job_id}")
        watcher = self.watcher
        watcher.track(self.job_id)
        watcher.poke()

        status = await self._wait_until_running(watcher)
        await self._ledger_call("session_started", parse_slurm_time(status.start_time) or datetime.now(timezone.utc))
        self.job_node = status.node
        self.ip = await self.node_address(status.node)
        self._note_progress(words.PROGRESS_RUNNING, words.on_node_message("Running", status.node, self.job_id))
        self._note_progress(
            words.PROGRESS_STARTING_JUPYTER, words.on_node_message("Starting Jupyter", status.node, self.job_id)
        )
        await self._wait_for_port(watcher)
        self._starting = False
        self._save_state_now()
        self._note_progress(
            words.PROGRESS_JUPYTER_STARTED, words.on_node_message("Jupyter started", status.node, self.job_id)
        )
        return (self.ip, self.port)

    def _save_state_now(self) -> None:
        """Commit the spawner's state to the hub database now (not only after start returns)."""
        if self.orm_spawner is not None:
            self.orm_spawner.state = self.get_state()
            session = object_session(self.orm_spawner)
            if session is not None:
                session.commit()

    async def _wait_until_running(self, watcher: JobWatcher) -> JobStatus:
        while True:
            status = await watcher.wait_for_change(self.job_id, timeout=max(self.status_interval, 5))
            if status.state in (JobState.RUNNING,):
                return status
            if status.state is JobState.PENDING:
                self._note_progress(words.PROGRESS_PENDING, self.describe_pending(status))
            elif status.state in (JobState.ENDED, JobState.GONE, JobState.COMPLETING):
                raise SpawnError(self.describe_failure(status))
            # UNKNOWN: keep waiting (a scheduler hiccup is not a failure)

    async def _wait_for_port(self, watcher: JobWatcher) -> None:
        assert self._port_event is not None
        while not self._port_event.is_set():
            try:
                await asyncio.wait_for(self._port_event.wait(), timeout=max(self.pending_status_interval, 1))
            except TimeoutError:
                status = watcher.status(self.job_id)
                if status.state in (JobState.ENDED, JobState.GONE, JobState.COMPLETING):
                    raise SpawnError(self.describe_failure(status)) from None
        self.accepts_port_report = False

    def report_port(self, port: int) -> None:
        """Called by the safe API handler with the single-user server's port."""
        self.port = port
        self.accepts_port_report = False
        if self._port_event is not None:
            self._port_event.set()
        # The server runs, so its job does: if the shared cache does not say so yet, ask
        # Slurm for the node soon rather than at the next tick of the pending cadence.
        if self.job_id and self.watcher.status(self.job_id).state is not JobState.RUNNING:
            self.watcher.poke(urgent=True)

    def describe_pending(self, status: JobStatus) -> str:
        """The reason in words with the request's numbers, and Slurm's start estimate (UTC)."""
        return words.pending_message(
            self.job_id, status.reason, status.start_time, self.job_request, datetime.now(timezone.utc)
        )

    def _note_progress(self, percent: int, message: str) -> None:
        """Add a progress event (none when the sentence did not change)."""
        if "_progress_log" not in self.__dict__:
            self._progress_log = []  # never the class's shared default
        if not self._progress_log or self._progress_log[-1].message != message:
            self._progress_log.append(ProgressEvent(percent, message))

    def describe_failure(self, status: JobStatus) -> str:
        what = status.slurm_state or status.state.value
        message = f"Slurm job {self.job_id} ended before Jupyter answered: {what}"
        if status.reason and status.reason != "None":
            message += f" ({status.reason})"
        if status.exit_code:
            message += f", exit code {status.exit_code}"
        tail = self.job_log_tail()
        if tail:
            message += ".\nLast lines of the job's log:\n" + tail
        return message

    def job_log_tail(self) -> str:
        """The job log's last lines, read only if it is a regular file with one link owned by the user: the
        user may have made ``~/.hpchub-jupyter-N.log`` a link to a file only the hub may read. Every
        directory below the home (or below / for a path outside it) is opened with O_NOFOLLOW."""
        try:
            entry = pwd.getpwnam(self.user.name)
        except KeyError:
            return ""
        template = self.job_output.replace("%j", str(self.job_id))
        if template.startswith("{home}/"):
            base, relative = entry.pw_dir, template[len("{home}/") :]
        else:
            base, relative = "/", template.replace("{home}", entry.pw_dir).lstrip("/")
        parts = [part for part in relative.split("/") if part]
        if not parts or any(part in (".", "..") for part in parts):
            return ""
        read = safe_fs.read_beneath(base, parts, owners={entry.pw_uid}, limit=64 * 1024, tail=True)
        if read.problem:
            self.log.warning("%s: job log %s not shown: %s", self._log_name, "/".join([base.rstrip("/"), *parts]),
                             read.problem)  # fmt: skip
            return f"(the job's log is not shown: {read.problem})"
        return safe_fs.tail_lines(read.data, self.log_tail_lines)

    async def poll(self):
        """None while the job is pending, running or UNKNOWN; 1 once Slurm says it ended."""
        if self._starting and not self._spawn_pending:
            return await self._abandon_interrupted_start()
        if not self.job_id:
            if self.ledger_session is not None and not self._spawn_pending:
                await self._ledger_session_ended(None)  # a hold whose start never got a job
            return 0 if self.port else 1
        watcher = self.watcher
        if self.job_id not in watcher.tracked:
            # e.g. after a hub restart: adopt our own recorded job, for its owner only
            if not await self._recorded_for_this_server():
                self.clear_state()
                return 1
            watcher.track(self.job_id)
            watcher.poke()
            # Answer from Slurm's state, not from an empty cache: at a hub restart JupyterHub
            # otherwise waits http_timeout for a server whose job ended while the hub was down.
            await watcher.wait_for_change(self.job_id, timeout=min(self.cluster.command_timeout, 15))
        status = watcher.status(self.job_id)
        if status.state in (JobState.ENDED, JobState.GONE):
            self.log.info("%s: job %s ended (%s)", self._log_name, self.job_id, status.slurm_state or status.state)
            last_known = watcher.last_known(self.job_id) or status
            watcher.untrack(self.job_id)
            await self._note_end_reason(status)
            await self._ledger_session_ended(last_known)
            self.clear_state()
            return 1
        return None

    async def _abandon_interrupted_start(self) -> int:
        """The hub stopped (crash, kill -9, restart) while this server was starting. JupyterHub
        cannot resume a start, so the job (if sbatch returned) is cancelled and the hold
        released with the cost so far (sacct's final charge replaces it): the server is stopped,
        and the user's pages say why."""
        job_id = self.job_id
        what = f"Slurm job {job_id} was cancelled" if job_id else "no job had been submitted"
        self.log.warning("%s: the hub stopped while this server was starting; %s", self._log_name, what)
        if self.ledger is not None and self.ledger_session is not None:
            try:
                await asyncio.to_thread(
                    self.ledger.note_stop_reason,
                    self.ledger_session,
                    f"stopped: the hub restarted while this server was starting; {what}",
                )
            except (LedgerError, SQLAlchemyError) as exc:
                self.log.warning("%s: noting the interrupted start failed: %s", self._log_name, exc)
        self._starting = False
        if job_id:  # the hub may have died before the ledger recorded it: complete the record first
            await self._ledger_call("record_job_id", job_id)
        await self.stop()  # scancel, wait for the end, release the hold (also without a job id)
        self.clear_state()
        self._save_state_now()
        return 1

    async def _recorded_for_this_server(self) -> bool:
        """A job is re-adopted only if the ledger's session for it is this server's, of this user
        (a state edited in the hub's database cannot adopt someone else's job). Without a ledger,
        or when it does not answer, the saved state is trusted."""
        ledger = self.ledger
        if ledger is None or self.ledger_session is None:
            return True
        try:
            info = await asyncio.to_thread(ledger.session, self.ledger_session)
        except (LedgerError, SQLAlchemyError) as exc:
            self.log.warning("%s: ledger not read before re-adopting job %s: %s", self._log_name, self.job_id, exc)
            return True
        if (info.job_id, info.user, info.server_name) == (self.job_id, self.user.name, self.name or ""):
            return True
        self.log.error("%s: refusing to adopt job %s: its ledger session %s is job %s of %s/%s", self._log_name,
                       self.job_id, info.id, info.job_id, info.user, info.server_name)  # fmt: skip
        return False

    def describe_end(self, status: JobStatus) -> str:
        """Why a running server's job ended outside the portal, for the user's pages ("stopped: ...")."""
        what = status.slurm_state or status.state.value
        if status.state is JobState.GONE:
            return f"stopped: Slurm job {self.job_id} is no longer known to Slurm"
        if what == "TIMEOUT":
            return f"stopped: Slurm job {self.job_id} reached its time limit (TIMEOUT)"
        if what == "CANCELLED":
            who = f", {status.reason}" if status.reason.startswith("cancelled by") else ""
            return f"stopped: Slurm job {self.job_id} was cancelled outside the portal (CANCELLED{who})"
        if what == "COMPLETED":
            return f"stopped: Jupyter exited (Slurm job {self.job_id} COMPLETED)"
        detail = f", exit code {status.exit_code}" if status.exit_code else ""
        return f"stopped: Slurm job {self.job_id} ended: {what}{detail}"

    async def _note_end_reason(self, status: JobStatus) -> None:
        """Record on the ledger session why the job ended, so the user's pages can show it."""
        ledger = self.ledger
        if ledger is None or self.ledger_session is None:
            return
        try:
            await asyncio.to_thread(ledger.note_stop_reason, self.ledger_session, self.describe_end(status))
        except LedgerError as exc:
            self.log.warning("%s: noting why job %s ended failed: %s", self._log_name, self.job_id, exc)

    async def stop(self, now: bool = False) -> None:
        self.accepts_port_report = False
        if not self.job_id:
            await self._ledger_session_ended(None)  # a hold whose start never got a job
            return
        job_id = self.job_id
        try:
            await self.client.scancel(job_id, as_user=self.user.name)
        except SlurmCommandError as exc:
            self.log.warning("%s: scancel %s failed: %s", self._log_name, job_id, exc)
        watcher = self.watcher
        status = watcher.last_known(job_id)
        if not now:
            watcher.track(job_id)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                watcher.poke()  # stops are rare: ask again each second until Slurm says it ended
                current = await watcher.wait_for_change(job_id, timeout=2)
                status = watcher.last_known(job_id) or status
                if current.state in (JobState.ENDED, JobState.GONE):
                    break
        watcher.untrack(job_id)
        await self._ledger_session_ended(status)

    async def progress(self):
        """JupyterHub's progress events: every step of this start, in order, none skipped."""
        events, sent = self._progress_log, 0
        while True:
            if self._progress_log is not events:  # a new start began: follow its events
                events, sent = self._progress_log, 0
            while sent < len(events):
                yield events[sent].to_json()
                sent += 1
            await asyncio.sleep(0.5)

    # ----- state -----
    def get_state(self) -> dict:
        state = super().get_state()
        state.pop("job_status", None)  # never raw squeue text
        if self.job_id or self.ledger_session is not None or self._starting:
            state["version"] = STATE_VERSION
        if self.job_id:
            state["job_id"] = self.job_id
            state["node"] = self.job_node
        if self.ledger_session is not None:
            state["ledger_session"] = self.ledger_session
        if self._starting:
            state["starting"] = True
        return state

    def load_state(self, state: dict) -> None:
        super().load_state(state)
        self.job_status = ""
        self.job_node = state.get("node", "")
        self.ledger_session = state.get("ledger_session")
        self._starting = bool(state.get("starting", False))

    def clear_state(self) -> None:
        super().clear_state()
        self.job_node = ""
        self.ledger_session = None
        self._starting = False
