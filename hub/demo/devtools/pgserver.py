"""A private PostgreSQL server for tests and benchmarks (Debian's PostgreSQL 15 binaries).

``PostgresServer(base_dir)`` keeps everything in ``base_dir``::

    base_dir/data/           the cluster (initdb), owned by the ``postgres`` OS user, 0700
    base_dir/data/postmaster.pid   PostgreSQL's own pid file: status and stop go by it
    base_dir/run/            the unix socket directory
    base_dir/password        the superuser's password (random, 0600)
    base_dir/postgres.log    the server's log

It listens on 127.0.0.1 only, on a free port, plus the socket in ``run/``. TCP logins
need the password (scram-sha-256); socket logins are trusted (only ``postgres`` and root
can enter ``run/``). initdb refuses to run as root, so as root every binary runs as the
``postgres`` user (``runuser -u postgres --``); as any other user, as that user.

Idempotent: ``start`` runs initdb only if ``data/`` has no cluster yet and does nothing if
the server of ``data/`` is already running (it reuses its port); ``stop`` (``pg_ctl -m
fast stop``, which signals the pid in ``postmaster.pid``) does nothing if it is not.
Nothing is ever stopped by name.

``durable=False`` (the default, for tests) turns off fsync, synchronous commit and full
page writes: fast, and a crash may lose the data, which tests throw away anyway. The
benchmark uses ``durable=True`` (PostgreSQL's defaults) so that commits cost what they do
in production.

    with PostgresServer.scratch() as server:        # a new temporary directory, removed after
        url = server.create_database("ledger")       # postgresql+psycopg://postgres:...@127.0.0.1:PORT/ledger

    with scratch_database("ledger") as url:         # the same in one line
        ...

Command line (for trying things by hand)::

    python -m hub.demo.devtools.pgserver start|stop|status|url DIR [--database NAME]
"""

from __future__ import annotations

import argparse
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

BIN_DIR = Path(os.environ.get("HPCHUB_PG_BIN_DIR", "/usr/lib/postgresql/15/bin"))
OS_USER = "postgres"
SUPERUSER = "postgres"
DRIVER = "postgresql+psycopg"

FAST_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off", "shared_buffers": "32MB"}
DURABLE_SETTINGS = {"shared_buffers": "128MB"}
COMMON_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "max_connections": "200",
    "timezone": "'UTC'",
    "log_timezone": "'UTC'",
    "logging_collector": "off",
    "log_min_messages": "warning",
    "dynamic_shared_memory_type": "posix",
}


class PostgresError(RuntimeError):
    """The server could not be set up, started or stopped (the message has its output)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pid_is_postgres(pid: int) -> bool:
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0].decode(errors="replace")
    except OSError:
        return False
    return Path(argv0.split()[0] if argv0 else "").name in ("postgres", "postmaster")


def _quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class PostgresServer:
    """One private PostgreSQL cluster in ``base_dir`` (see the module's docstring)."""

    def __init__(
        self,
        base_dir: str | os.PathLike,
        *,
        durable: bool = False,
        settings: Mapping[str, str] | None = None,
        bin_dir: str | os.PathLike = BIN_DIR,
        os_user: str = OS_USER,
    ) -> None:
        self.base_dir = Path(base_dir).resolve()
        self.data_dir = self.base_dir / "data"
        self.socket_dir = self.base_dir / "run"
        self.log_file = self.base_dir / "postgres.log"
        self.password_file = self.base_dir / "password"
        self.pid_file = self.data_dir / "postmaster.pid"
        self.bin_dir = Path(bin_dir)
        self.durable = durable
        self.settings = {**COMMON_SETTINGS, **(DURABLE_SETTINGS if durable else FAST_SETTINGS), **(settings or {})}
        self.as_root = os.geteuid() == 0
        self.os_user = os_user if self.as_root else pwd.getpwuid(os.geteuid()).pw_name
        self.started_here = False

    # --- state ----------------------------------------------------------------------------------

    def _pid_file_lines(self) -> list[str]:
        try:
            return self.pid_file.read_text().splitlines()
        except OSError:
            return []

    def pid(self) -> int | None:
        """The postmaster's pid from ``postmaster.pid`` if that process is a running postgres."""
        lines = self._pid_file_lines()
        try:
            pid = int(lines[0])
        except (IndexError, ValueError):
            return None
        return pid if _pid_is_postgres(pid) else None

    def running(self) -> bool:
        return self.pid() is not None

    @property
    def port(self) -> int:
        """The running server's port (line 4 of ``postmaster.pid``)."""
        lines = self._pid_file_lines()
        if self.pid() is None or len(lines) < 4:
            raise PostgresError(f"no PostgreSQL server is running in {self.data_dir}")
        return int(lines[3])

    @property
    def password(self) -> str:
        return self.password_file.read_text().strip()

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL (psycopg 3) for ``database`` over TCP on 127.0.0.1."""
        return f"{DRIVER}://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{database}"

    # --- running the binaries -------------------------------------------------------------------

    def _run(self, program: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        argv = [str(self.bin_dir / program), *args]
        if self.as_root:
            argv = ["runuser", "-u", self.os_user, "--", *argv]
        try:
            result = subprocess.run(
                argv, capture_output=True, text=True, timeout=timeout, cwd=self.base_dir, stdin=subprocess.DEVNULL
            )
        except FileNotFoundError as error:
            raise PostgresError(f"{error.filename} not found: install Debian's postgresql (15)") from None
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip()
            log = self._log_tail()
            raise PostgresError(f"{program} {' '.join(args)} failed ({result.returncode}): {output}{log}")
        return result

    def _log_tail(self, lines: int = 20) -> str:
        try:
            tail = self.log_file.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return ""
        return "\n--- " + str(self.log_file) + " ---\n" + "\n".join(tail) if tail else ""

    def _chown(self, path: Path) -> None:
        if self.as_root:
            entry = pwd.getpwnam(self.os_user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _check_reachable(self) -> None:
        """As root: the ``postgres`` user must be able to enter every directory above ``base_dir``."""
        if not self.as_root:
            return
        uid = pwd.getpwnam(self.os_user).pw_uid
        for directory in self.base_dir.parents:
            status = directory.stat()
            if not (status.st_mode & 0o001 or (status.st_uid == uid and status.st_mode & 0o100)):
                raise PostgresError(
                    f"{directory} is closed to the {self.os_user} user (mode {status.st_mode & 0o777:o}): "
                    f"put the server's directory elsewhere, e.g. under {tempfile.gettempdir()}"
                )

    # --- life cycle -----------------------------------------------------------------------------

    def init(self) -> None:
        """initdb into ``data/`` unless a cluster is there already (idempotent)."""
        if not (self.bin_dir / "initdb").exists():
            raise PostgresError(f"{self.bin_dir / 'initdb'} not found: install Debian's postgresql (15)")
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self._chown(self.base_dir)
        self._check_reachable()
        for directory in (self.socket_dir,):
            directory.mkdir(mode=0o700, exist_ok=True)
            self._chown(directory)
        if not self.password_file.exists():
            self.password_file.touch(mode=0o600)
            self.password_file.write_text(secrets.token_urlsafe(24) + "\n")
            self._chown(self.password_file)
        if (self.data_dir / "PG_VERSION").exists():
            return
        if self.data_dir.exists():  # an initdb that did not finish
            shutil.rmtree(self.data_dir)
        self._run(
            "initdb", "--pgdata", str(self.data_dir), "--username", SUPERUSER, "--pwfile", str(self.password_file),
            "--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync",
        )  # fmt: skip
        with open(self.data_dir / "postgresql.conf", "a") as conf:
            conf.write(
                "\n# hpchub: this run's settings (rewritten at every start)\ninclude_if_exists = 'hpchub.conf'\n"
            )

    def _write_settings(self, port: int) -> None:
        settings = {**self.settings, "port": str(port), "unix_socket_directories": f"'{self.socket_dir}'"}
        conf = self.data_dir / "hpchub.conf"
        conf.write_text("".join(f"{name} = {value}\n" for name, value in settings.items()))
        self._chown(conf)

    def start(self, *, attempts: int = 3) -> PostgresServer:
        """initdb if needed, then ``pg_ctl -w start`` on a free port (nothing if running)."""
        self.init()
        if self.running():
            return self
        for attempt in range(attempts):
            self._write_settings(free_port())
            self.log_file.touch(exist_ok=True)
            self._chown(self.log_file)
            try:
                self._run(
                    "pg_ctl", "--pgdata", str(self.data_dir), "--log", str(self.log_file), "-w", "-t", "60", "start"
                )
            except PostgresError:
                if attempt == attempts - 1 or self.running():  # (the port may have been taken meanwhile)
                    raise
                continue
            self.started_here = True
            return self
        raise AssertionError("unreachable")

    def stop(self, *, timeout: float = 60) -> bool:
        """``pg_ctl -m fast stop`` by ``postmaster.pid``; True if a server was running."""
        pid = self.pid()
        if pid is None:
            return False
        try:
            self._run("pg_ctl", "--pgdata", str(self.data_dir), "-m", "fast", "-w", "-t", str(int(timeout)), "stop")
        except PostgresError:
            if _pid_is_postgres(pid):  # still there: immediate shutdown, by the same pid
                os.kill(pid, signal.SIGQUIT)
                deadline = time.monotonic() + 10
                while _pid_is_postgres(pid) and time.monotonic() < deadline:
                    time.sleep(0.1)
            if _pid_is_postgres(pid):
                raise
        self.started_here = False
        return True

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()

    @classmethod
    @contextmanager
    def scratch(
        cls, base_dir: str | os.PathLike | None = None, *, prefix: str = "hpchub-pg-", **kwargs
    ) -> Iterator[PostgresServer]:
        """A new, empty server, stopped and its directory removed afterwards.

        ``base_dir``: a fixed directory (a server that a killed run left running there is
        stopped first, by its pid file, and the directory emptied), or None for a new
        directory under the system's temp dir."""
        if base_dir is None:
            base_dir = tempfile.mkdtemp(prefix=prefix)
        else:
            cls(base_dir, **kwargs).stop()
            shutil.rmtree(base_dir, ignore_errors=True)
        server = cls(base_dir, **kwargs)
        try:
            with server:
                yield server
        finally:
            shutil.rmtree(server.base_dir, ignore_errors=True)

    # --- databases ------------------------------------------------------------------------------

    def _admin(self):
        import psycopg  # noqa: PLC0415  (a dependency of hpchub; imported late for --help)

        return psycopg.connect(
            host="127.0.0.1", port=self.port, user=SUPERUSER, password=self.password, dbname="postgres", autocommit=True
        )

    def create_database(self, name: str) -> str:
        """Create ``name`` (an empty database; nothing if it exists); returns its URL."""
        with self._admin() as connection:
            exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if exists is None:
                connection.execute(f"CREATE DATABASE {_quote_identifier(name)}")
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop ``name`` if it exists, ending its connections first."""
        with self._admin() as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {_quote_identifier(name)} WITH (FORCE)")


@contextmanager
def scratch_database(name: str = "ledger", base_dir: str | os.PathLike | None = None, **kwargs) -> Iterator[str]:
    """A new server (see ``PostgresServer.scratch``) with one empty database: yields its URL."""
    with PostgresServer.scratch(base_dir, **kwargs) as server:
        yield server.create_database(name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hub.demo.devtools.pgserver", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("start", "stop", "status", "url"))
    parser.add_argument("dir", type=Path, help="the server's directory (created if missing)")
    parser.add_argument("--database", default=None, help="start, url: create this database and print its URL")
    parser.add_argument("--durable", action="store_true", help="start: keep fsync and synchronous commit on")
    args = parser.parse_args(argv)
    server = PostgresServer(args.dir, durable=args.durable)
    try:
        if args.action == "start":
            server.start()
            print(server.create_database(args.database) if args.database else server.url())
        elif args.action == "stop":
            print("stopped" if server.stop() else "not running")
        elif args.action == "status":
            print(f"running (pid {server.pid()}, port {server.port})" if server.running() else "not running")
            return 0 if server.running() else 3
        else:
            print(server.url(args.database or "postgres"))
    except PostgresError as error:
        print(f"pgserver: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
