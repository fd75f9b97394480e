"""Proposals' PDF attachments: checked, stored by content hash outside every served directory.

A file is at most ``MAX_ATTACHMENT_BYTES`` (10 MB) and starts with ``%PDF-``; it is stored as
``ATTACHMENT_DIR/SHA256.pdf`` (mode 0600, written to a temporary name and renamed, never
following a link), and the ledger keeps only its hash and the name the applicant gave. The hub
serves it (``read``) only to people who may see the proposal, as a download
(``Content-Disposition: attachment``, ``X-Content-Type-Options: nosniff``).
"""

from __future__ import annotations

import hashlib
import os
import re

from hub.ledger.allocations import MAX_ATTACHMENT_BYTES
from hub.ledger.errors import LedgerInputError

PDF_MAGIC = b"%PDF-"
SHA256_RE = re.compile(r"[0-9a-f]{64}")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def check_pdf(data: bytes, field: str = "attachment") -> None:
    if len(data) > MAX_ATTACHMENT_BYTES:
        raise LedgerInputError(field, f"at most {MAX_ATTACHMENT_BYTES // (1024 * 1024)} MB, got "
                                      f"{len(data) / (1024 * 1024):.1f} MB")  # fmt: skip
    if not data.startswith(PDF_MAGIC):
        raise LedgerInputError(field, "must be a PDF file (it does not start with %PDF-)")


def safe_filename(name: object) -> str:
    """A download name: letters, digits, ``._-`` only, ending in ``.pdf``, at most 100 characters."""
    base = os.path.basename(name) if isinstance(name, str) else ""
    base = _SAFE_NAME.sub("_", base).strip("._")[:96] or "proposal"
    return base if base.lower().endswith(".pdf") else f"{base}.pdf"


def _directory(root: str) -> int:
    if not root:
        raise LedgerInputError("attachment", "this site takes no attachments (c.HPCHubAllocations.attachment_dir)")
    os.makedirs(root, mode=0o700, exist_ok=True)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    return fd


def store(root: str, data: bytes) -> str:
    """Check and store ``data``; returns its sha256 (the same file stored twice is one file)."""
    check_pdf(data)
    digest = hashlib.sha256(data).hexdigest()
    directory = _directory(root)
    try:
        name = f"{digest}.pdf"
        try:
            os.stat(name, dir_fd=directory, follow_symlinks=False)
            return digest
        except FileNotFoundError:
            pass
        temporary = f".{digest}.{os.getpid()}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                     dir_fd=directory)  # fmt: skip
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.rename(temporary, name, src_dir_fd=directory, dst_dir_fd=directory)
        except BaseException:
            try:
                os.unlink(temporary, dir_fd=directory)
            except FileNotFoundError:
                pass
            raise
        return digest
    finally:
        os.close(directory)


def read(root: str, digest: str) -> bytes:
    if not isinstance(digest, str) or not SHA256_RE.fullmatch(digest):
        raise LedgerInputError("attachment", "not an attachment's hash")
    directory = _directory(root)
    try:
        fd = os.open(f"{digest}.pdf", os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=directory)
        with os.fdopen(fd, "rb") as f:
            return f.read(MAX_ATTACHMENT_BYTES + 1)
    finally:
        os.close(directory)
