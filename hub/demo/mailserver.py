"""The demo's SMTP server: a real one (aiosmtpd) on loopback that keeps every message it is given
as a file, so people and tests can read the portal's mail.

``python -m hub.demo.mailserver --dir STATE/mail --port 8025 --pid-file STATE/run/mail.pid``
listens on 127.0.0.1 only (another address is refused: this server relays nothing and checks no
one) and stores each message as ``STATE/mail/NNNNNN.eml`` (six digits, increasing from the
highest already there), written to a temporary file in the same directory and renamed into place,
so a reader never sees half a message. The envelope's recipients are added at the top as
``X-Envelope-To`` (the message's own To header is the sender's word). ``hpchub demo up`` starts it
(``hpchub demo down`` stops it by its pid file); the test instance runs its own on a free port.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import re
import signal
import sys
import threading
from dataclasses import dataclass
from email import policy
from email.parser import BytesParser
from pathlib import Path

from aiosmtpd.smtp import SMTP

NAME_RE = re.compile(r"(\d{6})\.eml")
PROGRAM = "hub.demo.mailserver"  # what the demo's pid check looks for in the process's argv


class MailStore:
    """``NNNNNN.eml`` files in one directory, numbered in the order they arrive."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._lock = threading.Lock()
        numbers = [int(m.group(1)) for p in self.directory.iterdir() if (m := NAME_RE.fullmatch(p.name))]
        self._next = max(numbers, default=0) + 1

    def store(self, content: bytes) -> Path:
        """Write one message atomically: a temporary file, flushed, then linked to its number."""
        with self._lock:
            tmp = self.directory / f".incoming-{os.getpid()}-{self._next}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
            while True:
                final = self.directory / f"{self._next:06d}.eml"
                self._next += 1
                try:
                    os.link(tmp, final)  # never replaces a message already there
                except FileExistsError:
                    continue
                break
            tmp.unlink()
            return final


class StoreHandler:
    """aiosmtpd's handler: every message it accepts goes to the store."""

    def __init__(self, store: MailStore) -> None:
        self.store = store

    async def handle_DATA(self, server, session, envelope) -> str:
        recipients = ", ".join(envelope.rcpt_tos)
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode()
        head = f"X-Envelope-To: {recipients}\r\n".encode() if recipients and "\n" not in recipients else b""
        path = await asyncio.to_thread(self.store.store, head + content)
        return f"250 OK stored as {path.name}"


@dataclass(frozen=True)
class StoredMail:
    """One stored message, parsed: what a reader (or a test) asks of it."""

    path: Path
    envelope_to: tuple[str, ...]
    to: str
    sender: str
    subject: str
    body: str
    key: str | None  # the portal's X-HPCHub-Key: what the message is about


def read_mailbox(directory: Path) -> list[StoredMail]:
    """Every stored message in ``directory``, in the order they arrived (temporary files skipped)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    answer = []
    for path in sorted(p for p in directory.iterdir() if NAME_RE.fullmatch(p.name)):
        message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        part = message.get_body(preferencelist=("plain",))
        envelope = tuple(a.strip() for a in str(message.get("X-Envelope-To", "")).split(",") if a.strip())
        answer.append(StoredMail(
            path=path, envelope_to=envelope, to=str(message.get("To", "")), sender=str(message.get("From", "")),
            subject=str(message.get("Subject", "")),
            body=part.get_content().replace("\r\n", "\n") if part is not None else "",
            key=message.get("X-HPCHub-Key"),
        ))  # fmt: skip
    return answer


def check_loopback(host: str) -> str:
    try:
        if ipaddress.ip_address(host).is_loopback:
            return host
    except ValueError:
        pass
    raise SystemExit(f"hub.demo.mailserver: --host: a loopback address only (127.0.0.1), got {host!r}")


async def serve(directory: Path, host: str, port: int, pid_file: Path | None) -> None:
    handler = StoreHandler(MailStore(directory))
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(handler, hostname="hpchub-demo-mail"), host=host, port=port)
    if pid_file is not None:
        pid_file.parent.mkdir(parents=True, exist_ok=True)
        pid_file.write_text(f"{os.getpid()}\n")
    print(f"hub.demo.mailserver: listening on {host}:{port}, storing in {directory}", flush=True)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        server.close()
        await server.wait_closed()
        if pid_file is not None and pid_file.exists() and pid_file.read_text().strip() == str(os.getpid()):
            pid_file.unlink()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hub.demo.mailserver", description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True, type=Path, help="where the messages are stored (NNNNNN.eml)")
    parser.add_argument("--port", type=int, default=8025, help="TCP port on loopback (default 8025)")
    parser.add_argument("--host", default="127.0.0.1", help="a loopback address (default 127.0.0.1)")
    parser.add_argument("--pid-file", type=Path, help="write our pid there (removed when we stop)")
    args = parser.parse_args(argv)
    if not 1 <= args.port <= 65535:
        parser.error(f"--port: from 1 to 65535, got {args.port}")
    asyncio.run(serve(args.dir, check_loopback(args.host), args.port, args.pid_file))
    return 0


if __name__ == "__main__":
    sys.exit(main())
