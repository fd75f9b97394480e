"""A private portal for the integration tests: its own cluster, proxy and hub.

Started once per session in ``$HPCHUB_TEST_DIR`` (default /var/lib/hpchub-test)
on free ports, so it runs beside a demo; stopped by pid files afterwards.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests

TEST_DIR = Path(os.environ.get("HPCHUB_TEST_DIR", "/var/lib/hpchub-test"))
SECURITY_DIR = Path(__file__).parent / "security"


def pytest_collection_modifyitems(config, items):
    """The attack suite (``security/``): each test there performs an attack as a hostile user
    would, with that user's own files, tokens and sessions, and asserts that it fails. Marked
    ``security`` and ``integration`` (``pytest -m security``). No conftest.py of its own there:
    the integration tests import this one as ``conftest``."""
    for item in items:
        if SECURITY_DIR in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.security)
            item.add_marker(pytest.mark.integration)


HPCHUB = [sys.executable, "-m", "hub.cli"]
BROKEN_ENVIRONMENT = """
[[environment]]
id = "broken"
name = "Broken (tests only)"
description = "a venv that does not exist: the job fails before Jupyter starts"
kind = "venv"
path = "/opt/hpchub-test-missing-venv"
gpu = true
default = false
"""


def _no_site_configuration() -> str:
    """An empty configuration file for the command line (``$HPCHUB_CONFIG``): without it, a
    command that reads the hub's configuration falls back to /etc/hpchub/hpchub_config.py, else
    to the demo's (/var/lib/hpchub-demo): ``make demo`` beside ``make test``, or a real install,
    would change what the tests run. A test that wants a configuration passes ``--config``."""
    path = Path(tempfile.gettempdir()) / "hpchub-tests-empty-config.py"
    if not path.exists():
        path.write_text("# the integration tests' command line: no site configuration\n")
    return str(path)


def cli_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "HPCHUB_CONFIG": _no_site_configuration(), **extra}


def hpchub(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*HPCHUB, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
        cwd="/",  # import the installed package, not the checkout
        env=cli_env(),
    )


@pytest.fixture(name="hpchub")
def hpchub_fixture():
    """The ``hpchub`` command line of the installed package."""
    return hpchub


@dataclass
class Portal:
    state_dir: Path
    url: str
    token: str
    slurm_conf: str

    @property
    def api(self) -> str:
        return f"{self.url}/hub/api"

    def session(self) -> requests.Session:
        session = requests.Session()
        session.headers["Authorization"] = f"token {self.token}"
        return session

    def slurm(self, *argv: str, check: bool = True) -> str:
        env = dict(os.environ, SLURM_CONF=self.slurm_conf)
        return subprocess.run(list(argv), env=env, capture_output=True, text=True, check=check, timeout=60).stdout

    def jobs(self) -> dict[str, dict[str, str]]:
        """Active jobs of the cluster: id -> account, user, gres, time limit (minutes), state, comment."""
        out = self.slurm("squeue", "--noheader", "--format=%i|%a|%u|%b|%L|%l|%T|%k|%N")
        jobs = {}
        for line in out.splitlines():
            job_id, account, user, gres, _left, limit, state, comment, node = line.split("|")
            jobs[job_id] = {
                "account": account,
                "user": user,
                "gres": gres,
                "time_limit": limit,
                "state": state,
                "comment": comment,
                "node": node,
            }
        return jobs

    def server(self, user: str, name: str = "") -> dict | None:
        model = self.session().get(f"{self.api}/users/{user}").json()
        return model.get("servers", {}).get(name)

    def wait_ready(self, user: str, name: str = "", timeout: float = 90) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            server = self.server(user, name)
            if server and server.get("ready"):
                return server
            if server is None:
                raise AssertionError(f"{user}/{name} server disappeared while starting")
            time.sleep(0.5)
        raise AssertionError(
            f"{user}/{name} not ready after {timeout} s; {server}; the cluster's jobs:\n"
            + self.slurm("squeue", "--format=%i|%a|%u|%b|%T|%r|%v|%N|%k")
        )

    def wait_stopped(self, user: str, name: str = "", timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.server(user, name) is None:
                return
            time.sleep(0.5)
        raise AssertionError(f"{user}/{name} still present after {timeout} s")

    def server_url(self, user: str, name: str = "") -> str:
        suffix = f"{user}/{name}/" if name else f"{user}/"
        return f"{self.url}/user/{suffix}"

    def session_environ(self, user: str) -> dict[str, str]:
        """The environment of a user's single-user server of *this* hub (matched by the hub API
        port, so a demo beside the tests is not picked): what the user can read inside their job."""
        hub_api_port = json.loads((self.state_dir / "demo.json").read_text())["ports"]["hub_api"]
        pids = subprocess.run(
            ["pgrep", "-u", user, "-f", "jupyterhub-singleuser"], capture_output=True, text=True, check=False
        ).stdout.split()
        for pid in pids:
            try:
                raw = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
            except OSError:
                continue
            environ = dict(entry.split("=", 1) for entry in raw.split("\0") if "=" in entry)
            if f":{hub_api_port}/" in environ.get("JUPYTERHUB_API_URL", "") and "JUPYTERHUB_API_TOKEN" in environ:
                return environ
        raise AssertionError(f"no single-user server of {user} for this hub")

    def server_token(self, user: str) -> str:
        """The API token of the user's single-user server of this hub (see session_environ)."""
        return self.session_environ(user)["JUPYTERHUB_API_TOKEN"]

    def ensure_broken_environment(self) -> None:
        """A catalogue entry whose venv is missing (for the early-failure test); `demo up` rewrites the file."""
        catalogue = self.state_dir / "hub" / "catalog.toml"
        if 'id = "broken"' not in catalogue.read_text():
            with open(catalogue, "a") as handle:
                handle.write(BROKEN_ENVIRONMENT)

    @property
    def ledger_url(self) -> str:
        return f"sqlite:///{self.state_dir / 'hub' / 'ledger.sqlite'}"

    def ledger_cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """``hpchub ARGS`` on the instance's ledger and cluster (``course create`` reads Slurm's accounts)."""
        return subprocess.run(
            [*HPCHUB, *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=check,
            cwd="/",
            env=cli_env(HPCHUB_LEDGER_URL=self.ledger_url, SLURM_CONF=self.slurm_conf),
        )

    def activity_report(self, user: str, server: str = ""):
        """The latest activity report the hub stored for the user's running server (None: none yet):
        what the session itself pushed, and what the idle stop reads."""
        from hub.ledger import Ledger  # noqa: PLC0415

        with Ledger(self.ledger_url) as ledger:
            sessions = [s for s in ledger.active_sessions(user) if s.server_name == server]
            return ledger.activity_reports([sessions[0].id]).get(sessions[0].id) if sessions else None

    def wait_activity_report(self, user: str, server: str = "", accept=lambda report: True, timeout: float = 90):
        """Until the hub holds a report of the server that ``accept`` takes (reports come every interval
        and within 5 s of a kernel's new request)."""
        deadline = time.monotonic() + timeout
        while True:
            report = self.activity_report(user, server)
            if report is not None and accept(report):
                return report
            assert time.monotonic() < deadline, f"no such activity report of {user}/{server} in {timeout} s: {report}"
            time.sleep(0.5)

    def usage(self, project: str) -> dict:
        return json.loads(self.ledger_cli("usage", project, "--json").stdout)

    @property
    def accounts_file(self) -> Path:
        """The identity provider's accounts, re-read on every lookup (tests may rewrite it)."""
        return self.state_dir / "idp" / "accounts.json"

    def wait_final_charges(self, project: str, timeout: float = 90) -> None:
        """Until every ended job of the project has its final charge from sacct (the reconciler
        imports them every few seconds), so that used no longer moves."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = self.ledger_cli("charges", project, "--csv").stdout.splitlines()[1:]
            if all(line.rsplit(",", 1)[-1] == "final" for line in rows):
                return
            time.sleep(1)
        raise AssertionError(f"{project} still has provisional charges after {timeout} s")

    def set_remaining(self, project: str, gpu_hours: float, reason: str) -> None:
        """Append the grant (+ or -) that makes the project's remaining exactly ``gpu_hours``
        (tests that need a known budget, whatever the tests before them spent), once the
        final charges of earlier jobs are in (a late import would move it again).

        Charges are whole mgs (1 s of an a100 is 500), so what is left after earlier tests is
        rarely a multiple of 0.0001 GPU-h, the finest grant ``hpchub grant`` takes; the test
        appends the exact grant row itself, as the ledger's own ``grant`` would."""
        self.wait_final_charges(project)
        from hub.ledger import Ledger  # noqa: PLC0415
        from hub.ledger.arithmetic import MGS_PER_GPU_HOUR  # noqa: PLC0415
        from hub.ledger.models import Grant  # noqa: PLC0415

        target_mgs = round(gpu_hours * MGS_PER_GPU_HOUR)
        with Ledger(self.ledger_url) as ledger:
            missing = target_mgs - ledger.figures(project).remaining_mgs
            if missing:
                with ledger._write() as session:  # noqa: SLF001 (test seeding; append-only like grant)
                    row = ledger._project(session, project, lock=True)  # noqa: SLF001
                    session.add(
                        Grant(
                            project_id=row.id,
                            amount_mgs=missing,
                            reason=reason,
                            granted_by="tests",
                            granted_at=ledger._now(None),
                        )
                    )  # noqa: SLF001
            assert ledger.figures(project).remaining_mgs == target_mgs
        assert self.usage(project)["remaining_gpu_hours"] == gpu_hours

    def course_with_student(self, course: str, description: str, *create_options: str, student: str = "carol") -> None:
        """A course of a test's own (changing cs101 would change it for the other tests): its
        Slurm account, the course (10 GPU-h, 2 per student, a100 only, plus ``create_options``)
        and ``student`` on it, once the reconciler made the student's association."""
        self.slurm("sacctmgr", "-i", "add", "account", course, "cluster=hpchubtest", f"description={description}",
                   check=False)  # fmt: skip
        self.ledger_cli("course", "create", course, "--account", course, "--start", "2026-01-01", "--end", "2099-12-31",
                        "--gpu-hours", "10", "--per-student", "2", "--gpu-types", "a100", *create_options)  # fmt: skip
        self.ledger_cli("member", "add", course, student, "--role", "student")
        deadline = time.monotonic() + 60
        while f"{student}|{course}" not in self.slurm("sacctmgr", "--noheader", "--parsable2", "show", "associations",
                                                      f"account={course}", "format=User,Account"):  # fmt: skip
            assert time.monotonic() < deadline, f"{student}'s association on the course account was never made"
            time.sleep(1)

    def set_idp_groups(self, principal: str, groups: list[str]) -> None:
        """Change a principal's groups at the identity provider (read again at each login)."""
        data = json.loads(self.accounts_file.read_text())
        accounts = data["accounts"] if isinstance(data, dict) else data
        for account in accounts:
            if account["username"] == principal:
                account["groups"] = groups
        tmp = self.accounts_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        os.replace(tmp, self.accounts_file)

    def login(self, principal: str, password: str) -> tuple[requests.Session, requests.Response]:
        """The whole browser-less login: hub -> provider's form -> POST -> consent -> callback -> hub."""
        session = requests.Session()
        form = session.get(f"{self.url}/hub/oauth_login", timeout=30)
        assert form.status_code == 200 and "/interaction/" in form.url, (form.status_code, form.url)
        action = re.search(r'<form[^>]*action="([^"]+)"', form.text)
        assert action, form.text[:500]
        response = session.post(
            urljoin(form.url, action.group(1)), data={"username": principal, "password": password}, timeout=30
        )
        return session, response

    def spawn_path(self, user: str, name: str = "") -> str:
        return f"{self.api}/users/{user}/servers/{name}" if name else f"{self.api}/users/{user}/server"


def logged_in_session(
    portal: Portal, name: str, password: str | None = None, domain: str = "uni.example"
) -> requests.Session:
    """The user's own browser session (cookie and X-XSRFToken), through the identity provider
    (``NAME@DOMAIN``, by default uni.example, with the demo password ``NAME-demo`` unless another is given)."""
    session, response = portal.login(f"{name}@{domain}", password or f"{name}-demo")
    assert response.status_code == 200, (name, response.status_code, response.url)
    session.headers["X-XSRFToken"] = session.cookies.get("_xsrf", "")
    assert session.headers["X-XSRFToken"], f"no _xsrf cookie for {name}"
    return session


def own_token(portal: Portal, session: requests.Session, user: str, scopes: list[str] | None = None) -> str:
    """A token the user makes for themself with their own login (JupyterHub's token API)."""
    body: dict = {"note": "hpchub integration test", "expires_in": 3600}
    if scopes is not None:
        body["scopes"] = scopes
    response = session.post(f"{portal.api}/users/{user}/tokens", json=body, timeout=30)
    assert response.status_code == 201, response.text
    return response.json()["token"]


def token_session(token: str) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"token {token}"
    return session


@pytest.fixture(scope="session")
def portal() -> Portal:
    state = str(TEST_DIR)
    if (TEST_DIR / "demo.json").exists() or (TEST_DIR / "cluster.json").exists():
        hpchub("demo", "down", "--state-dir", state, check=False)
    shutil.rmtree(TEST_DIR, ignore_errors=True)
    up = hpchub(
        "demo",
        "up",
        "--state-dir",
        state,
        "--ports",
        "auto",
        "--cluster-name",
        "hpchubtest",
        "--named-server-limit",
        "25",
        "--reconcile-every",
        "3",
        "--exhaustion-grace",
        "3",
        "--status-interval",
        "5",
        "--orphan-grace",
        "20",
        "--ledger-busy-timeout",
        "5",
        "--idle-timeout",
        "0",  # the idle stop's test runs its own passes (test_idle_stop.py)
        check=False,
    )
    if up.returncode != 0:
        hpchub("demo", "down", "--state-dir", state, check=False)
        pytest.fail(f"hpchub demo up failed:\n{up.stdout}\n{up.stderr}")
    demo = json.loads((TEST_DIR / "demo.json").read_text())
    cluster = json.loads((TEST_DIR / "cluster.json").read_text())
    portal = Portal(
        state_dir=TEST_DIR,
        url=f"http://127.0.0.1:{demo['ports']['hub_public']}",
        token=(TEST_DIR / "hub" / "service_token").read_text().strip(),
        slurm_conf=str(Path(cluster["state_dir"]) / "slurm" / "etc" / "slurm.conf"),
    )
    # Users exist in the hub once they have logged in through the identity provider.
    for principal in ("alice", "bob", "carol", "erin"):
        _session, response = portal.login(f"{principal}@uni.example", f"{principal}-demo")
        assert response.status_code == 200 and response.url.endswith("/hub/home"), (principal, response.url)
    yield portal
    down = hpchub("demo", "down", "--state-dir", state, check=False)
    print(down.stdout, down.stderr)


class Mailbox:
    """The test instance's mail as its SMTP server stored it (``STATE/mail/NNNNNN.eml``, hub/demo/mailserver.py):
    the hub and the reconciler send there. Each message parsed: ``to``, ``subject``, ``body``, ``key`` (the
    portal's ``X-HPCHub-Key``: what it is about, e.g. ``period-7:vision-lab:2027-01-07:alice``)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def messages(self) -> list:
        from hub.demo.mailserver import read_mailbox  # noqa: PLC0415

        return read_mailbox(self.directory)

    def to(self, address: str) -> list:
        return [m for m in self.messages() if address in m.envelope_to or m.to == address]

    def wait_for(self, *, to: str | None = None, subject: str | None = None, key: str | None = None,
                 timeout: float = 60):  # fmt: skip
        """The first message to ``to`` whose subject contains ``subject`` and whose key starts with ``key``,
        waiting for the reconciler's passes to send it (it sends what is queued every pass)."""
        deadline = time.monotonic() + timeout
        while True:
            for message in self.messages():
                if ((to is None or to in message.envelope_to or message.to == to)
                        and (subject is None or subject in message.subject)
                        and (key is None or (message.key or "").startswith(key))):  # fmt: skip
                    return message
            assert time.monotonic() < deadline, (
                f"no mail to {to} with {subject!r} / key {key!r} in {timeout} s; the mailbox: "
                + "; ".join(f"{m.path.name} {m.to} {m.subject!r}" for m in self.messages())
            )
            time.sleep(0.5)


@pytest.fixture
def mailbox(portal) -> Mailbox:
    """The instance's SMTP store: ``mailbox.wait_for(to="fiona@uni.example", subject="awarded")``."""
    return Mailbox(portal.state_dir / "mail")


@pytest.fixture(scope="module")
def hub_reconciler_paused(portal):
    """For a module whose tests run their own ``hpchub reconcile`` passes and read their lines:
    pause the hub's reconcile service for the module (``pytest.mark.usefixtures``)."""
    pause = portal.state_dir / "hub" / "reconcile.pause"
    log = portal.state_dir / "log" / "reconcile.log"
    seen = log.stat().st_size if log.exists() else 0
    pause.touch()
    # a pass under way finishes first: the service says "paused while ... exists" once it skips
    deadline = time.monotonic() + 120
    while True:
        text = log.read_bytes() if log.exists() else b""
        if b"paused while" in text[seen if len(text) >= seen else 0 :]:  # (a restarted service's log starts anew)
            break
        assert time.monotonic() < deadline, f"the hub's reconciler did not pause within 120 s ({log})"
        time.sleep(0.5)
    yield
    seen = log.stat().st_size if log.exists() else 0
    pause.unlink(missing_ok=True)
    # ... and resumes before the next module may pause it again (a pause file gone for less than
    # the loop's 1 s check is never seen gone: no "resumed", and then no second "paused")
    deadline = time.monotonic() + 60
    while b"resumed" not in (log.read_bytes() if log.exists() else b"")[seen:]:
        assert time.monotonic() < deadline, f"the hub's reconciler did not resume within 60 s ({log})"
        time.sleep(0.5)


BOB_H200_ONE_HOUR = {
    "project": "vision-lab",
    "partition": "gpu",
    "gpu_type": "h200",
    "gpus": 1,
    "hours": 1,
    "environment": "default",
}


@pytest.fixture(scope="module")
def bob_job(portal) -> str:
    """bob's default server, running 1 x h200 for 1 h on vision-lab, for one test module: its Slurm job id."""
    response = portal.session().post(portal.spawn_path("bob"), json={"user_options": BOB_H200_ONE_HOUR}, timeout=120)
    assert response.status_code in (201, 202), response.text
    try:
        portal.wait_ready("bob")
        [job_id] = [job_id for job_id, job in portal.jobs().items() if job["comment"] == "hpchub:user=bob,server="]
        yield job_id
    finally:
        portal.session().delete(portal.spawn_path("bob"), timeout=60)
        portal.wait_stopped("bob")


# --- browser tests (Playwright driving Debian's chromium; no browser download) ----------------------------

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]  # fmt: skip


@pytest.fixture(scope="module")
def browser():
    """A headless chromium for the module (a module may define its own ``browser``)."""
    playwright = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def log_in(portal, browser):
    """``log_in(name, width, domain)``: a page of a new browser context, logged in through the identity
    provider as ``NAME@DOMAIN`` (default uni.example) with the demo password ``NAME-demo``."""
    contexts = []

    def open_page(name: str, width: int = 1280, domain: str = "uni.example"):
        context = browser.new_context(viewport={"width": width, "height": 900}, accept_downloads=True)
        contexts.append(context)
        page = context.new_page()
        page.goto(f"{portal.url}/hub/oauth_login")
        page.fill("input[name=username]", f"{name}@{domain}")
        page.fill("input[name=password]", f"{name}-demo")
        page.click("button:has-text('Sign in')")
        page.wait_for_url(f"{portal.url}/hub/home", timeout=30000)
        return page

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture(scope="module")
def awards_leave_no_members(portal):
    """The projects a module's awards make keep no members after it: the demo users' project lists,
    which later modules check, stay the demo's (the projects and their records stay)."""
    from hub.ledger import Ledger  # noqa: PLC0415

    with Ledger(portal.ledger_url) as ledger:
        before = {project.name for project in ledger.projects()}
    yield
    with Ledger(portal.ledger_url) as ledger:
        for project in ledger.projects():
            if project.name not in before:
                for user in ledger.active_members(project.name):
                    ledger.remove_member(project.name, user, who="test cleanup")
