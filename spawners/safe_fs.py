"""File operations for privileged code (root, or the hub's service account) acting inside trees that
users can write: project spaces and home directories. None of them ever follows a symbolic link.

Each path below a trusted base (PROJECT_ROOT, a home directory from the password database) is
opened one component at a time with ``O_NOFOLLOW | O_DIRECTORY`` relative to its parent's file
descriptor (openat style), and every later operation acts on a descriptor or on a name relative
to one (``dir_fd``, ``follow_symlinks=False``). A user who swaps an entry for a symlink gets an
error (``ELOOP``/``ENOTDIR``), never root acting on the link's target. Reads additionally check
that the file is a regular file with one link owned by the expected user, so neither a symlink
nor a hard link to someone else's file is ever shown.

A lower layer than :mod:`hub.envs` (which uses it for the project spaces) so that the spawner may
use it for the job's log too.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
WRITE_BITS = stat.S_IWGRP | stat.S_IWOTH
ID_BITS = stat.S_ISUID | stat.S_ISGID


class UnsafeEntry(Exception):
    """An entry is not what privileged code may act on (a symlink, not a directory, someone else's)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def check_name(name: str) -> str:
    """One path component: no '/', not '', '.' or '..'."""
    if not name or "/" in name or name in (".", "..") or "\0" in name:
        raise ValueError(f"not a single path component: {name!r}")
    return name


def open_dir(name: str, dir_fd: int | None = None) -> int:
    """A directory's descriptor, never through a symlink (``OSError`` ELOOP/ENOTDIR if it is one)."""
    return os.open(check_name(name), DIR_FLAGS, dir_fd=dir_fd)


def open_base(path: str | os.PathLike) -> int:
    """A trusted base directory's descriptor (the site's PROJECT_ROOT, a home from passwd): its own
    path may contain the site's symlinks; what is below it is opened with :func:`open_beneath`."""
    return os.open(os.fspath(path), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def open_beneath(base_fd: int, parts: Sequence[str]) -> int:
    """The directory ``base/parts[0]/parts[1]/...``, each component opened with O_NOFOLLOW."""
    fd = os.dup(base_fd)
    try:
        for part in parts:
            child = open_dir(part, fd)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextmanager
def closing(fd: int) -> Iterator[int]:
    try:
        yield fd
    finally:
        os.close(fd)


def lstat_at(name: str, dir_fd: int) -> os.stat_result | None:
    """The entry's own status (a symlink's, not its target's); None if it does not exist."""
    try:
        return os.stat(check_name(name), dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def describe(info: os.stat_result | None) -> str:
    """An entry in words for a report: ``a symbolic link``, ``a directory owned by uid 1002 (drwxrwx---)``."""
    if info is None:
        return "missing"
    if stat.S_ISLNK(info.st_mode):
        return "a symbolic link"
    kind = "a directory" if stat.S_ISDIR(info.st_mode) else "a file" if stat.S_ISREG(info.st_mode) else "a special file"
    return f"{kind} owned by uid {info.st_uid} ({stat.filemode(info.st_mode)})"


def is_closed_dir(info: os.stat_result | None, uid: int = 0) -> bool:
    """A real directory of ``uid`` that neither group nor others may write."""
    return (info is not None and stat.S_ISDIR(info.st_mode) and info.st_uid == uid
            and not info.st_mode & WRITE_BITS)  # fmt: skip


def listdir(fd: int) -> list[str]:
    return sorted(os.listdir(fd))


@dataclass(frozen=True)
class ReadResult:
    """What a guarded read found: the bytes, the file's size, and why nothing was read ('' if it was)."""

    data: bytes = b""
    size: int = 0
    problem: str = ""
    missing: bool = False


def read_regular(dir_fd: int, name: str, *, owners: Collection[int], offset: int = 0, limit: int = 1 << 20,
                 tail: bool = False) -> ReadResult:  # fmt: skip
    """Read ``name`` (relative to ``dir_fd``) only if it is a regular file with one link owned by one of
    ``owners``: from ``offset``, or its last ``limit`` bytes with ``tail``. Otherwise nothing, and why."""
    try:
        fd = os.open(check_name(name), READ_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        return ReadResult(missing=True)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return ReadResult(problem="it is a symbolic link")
        return ReadResult(problem=exc.strerror or str(exc))
    with closing(fd):
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return ReadResult(problem="it is not a regular file")
        if info.st_uid not in owners:
            return ReadResult(problem=f"it is owned by uid {info.st_uid}, not by the expected user")
        if info.st_nlink != 1:
            return ReadResult(problem="it is a hard link")
        start = max(0, info.st_size - limit) if tail else offset
        data = os.pread(fd, limit, start) if start < info.st_size else b""
        return ReadResult(data=data, size=info.st_size)


def read_beneath(base: str | os.PathLike, parts: Sequence[str], *, owners: Collection[int], **kwargs) -> ReadResult:
    """:func:`read_regular` of ``base/parts...`` with every directory below ``base`` opened O_NOFOLLOW."""
    if not parts:
        raise ValueError("read_beneath: no file name")
    try:
        base_fd = open_base(base)
    except FileNotFoundError:
        return ReadResult(missing=True)
    except OSError as exc:
        return ReadResult(problem=exc.strerror or str(exc))
    with closing(base_fd):
        try:
            fd = open_beneath(base_fd, parts[:-1])
        except FileNotFoundError:
            return ReadResult(missing=True)
        except OSError as exc:
            what = "a directory on its path is a symbolic link" if exc.errno in (errno.ELOOP, errno.ENOTDIR) else \
                (exc.strerror or str(exc))  # fmt: skip
            return ReadResult(problem=what)
        with closing(fd):
            return read_regular(fd, parts[-1], owners=owners, **kwargs)


def tail_lines(data: bytes, lines: int) -> str:
    return "\n".join(data.decode("utf-8", errors="replace").splitlines()[-lines:])


def write_file(dir_fd: int, name: str, data: bytes, *, uid: int, gid: int, mode: int) -> None:
    """Write ``name`` atomically (a new temporary file, then rename over it), owned ``uid:gid`` with ``mode``.
    A symlink at ``name`` is replaced, never written through."""
    tmp = f".{check_name(name)}.tmp-{os.getpid()}"
    try:
        os.unlink(tmp, dir_fd=dir_fd)
    except FileNotFoundError:
        pass
    fd = os.open(tmp, CREATE_FLAGS, 0o600, dir_fd=dir_fd)
    try:
        with closing(fd):
            os.write(fd, data)
            os.fchown(fd, uid, gid)
            os.fchmod(fd, mode)
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        try:
            os.unlink(tmp, dir_fd=dir_fd)
        except OSError:
            pass
        raise


def make_dir(parent_fd: int, name: str, *, uid: int, gid: int, mode: int) -> int:
    """The directory ``name`` in ``parent_fd`` (made if missing), set to ``uid:gid`` and ``mode``: its descriptor.
    ``UnsafeEntry`` if something else is there (a symlink, a file): the caller moves it aside or refuses."""
    info = lstat_at(name, parent_fd)
    if info is None:
        os.mkdir(name, 0o700, dir_fd=parent_fd)
    elif not stat.S_ISDIR(info.st_mode):
        raise UnsafeEntry(name, describe(info))
    fd = open_dir(name, parent_fd)
    try:
        os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)  # after chown (which clears setgid), and explicit: mkdir's mode is masked by the umask
    except BaseException:
        os.close(fd)
        raise
    return fd


def free_name(dir_fd: int, wanted: str) -> str:
    """``wanted``, or ``wanted.2``, ``wanted.3``, ... : a name nothing in ``dir_fd`` has."""
    name, number = wanted, 1
    while lstat_at(name, dir_fd) is not None:
        number += 1
        name = f"{wanted}.{number}"
    return name


def move(src_fd: int, name: str, dst_fd: int, new_name: str) -> str:
    """Rename an entry (a symlink is renamed itself, never followed) to a name that is free in ``dst_fd``."""
    target = free_name(dst_fd, new_name)
    os.rename(check_name(name), target, src_dir_fd=src_fd, dst_dir_fd=dst_fd)
    return target


def remove_tree(dir_fd: int, name: str) -> None:
    """Remove ``name`` in ``dir_fd`` and everything below it without following a link (a symlink or a file is
    unlinked; shutil.rmtree with ``dir_fd`` is the fd-based, symlink-attack-resistant walk)."""

    info = lstat_at(name, dir_fd)
    if info is None:
        return
    if stat.S_ISDIR(info.st_mode):
        shutil.rmtree(name, dir_fd=dir_fd)
    else:
        os.unlink(name, dir_fd=dir_fd)


def trusted_target(link_dir: Sequence[str], target: str, top: Sequence[str]) -> bool:
    """Whether a symlink in directory ``link_dir`` (path parts) pointing at ``target`` stays inside ``top``
    (lexically: a relative target without escaping '..')."""
    if target.startswith("/"):
        return False
    parts = list(link_dir)
    for part in target.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if len(parts) <= len(top):
                return False
            parts.pop()
        else:
            parts.append(part)
    return parts[: len(top)] == list(top)


def root_only_path(path: str) -> bool:
    """Whether ``path`` and every directory above it (after resolving the site's links) are root's and
    writable by no one else: a symlink to it cannot be redirected by a user (e.g. /usr/bin/python3.11)."""
    real = os.path.realpath(path)
    current = real
    while True:
        try:
            info = os.lstat(current)
        except OSError:
            return False
        if info.st_uid != 0 or (
            info.st_mode & WRITE_BITS and not (stat.S_ISDIR(info.st_mode) and info.st_mode & stat.S_ISVTX)
        ):
            return False
        if current == "/":
            return True
        current = os.path.dirname(current)


class SealRefused(Exception):
    """A tree holds something a sealed copy may not (a link out of it to a user's file, a device, a FIFO)."""


def copy_sealed(src_fd: int, dst_fd: int, *, gid: int, top_parts: Sequence[str], path: str = "") -> int:
    """Copy the tree of ``src_fd`` into the empty directory ``dst_fd`` as root:``gid``: new inodes (so neither a
    hard link nor a write descriptor the old owner kept reaches the copy), modes without group/other write,
    files without setuid/setgid, mtimes kept (Python's .pyc checks), symlinks re-made only if they stay inside
    the tree or point at a root-only path. ``top_parts``: the tree's path parts (for the symlink check).
    Returns the number of entries copied; ``SealRefused`` on anything else."""
    count = 0
    stack = [(os.dup(src_fd), os.dup(dst_fd), list(top_parts))]
    try:
        while stack:
            source, dest, parts = stack.pop()
            try:
                for name in listdir(source):
                    info = lstat_at(name, source)
                    if info is None:
                        continue
                    where = "/".join([*parts, name])
                    if stat.S_ISLNK(info.st_mode):
                        target = os.readlink(name, dir_fd=source)
                        if not (trusted_target(parts, target, top_parts) or
                                (target.startswith("/") and root_only_path(target))):  # fmt: skip
                            raise SealRefused(f"/{where} is a symbolic link to {target}, which a user may change")
                        os.symlink(target, name, dir_fd=dest)
                        os.chown(name, 0, gid, dir_fd=dest, follow_symlinks=False)
                    elif stat.S_ISDIR(info.st_mode):
                        child = open_dir(name, source)
                        try:
                            os.mkdir(name, 0o700, dir_fd=dest)
                            copy = open_dir(name, dest)
                        except BaseException:
                            os.close(child)
                            raise
                        os.fchown(copy, 0, gid)
                        os.fchmod(copy, stat.S_IMODE(info.st_mode) & ~WRITE_BITS & ~stat.S_ISUID | stat.S_IRWXU)
                        stack.append((child, copy, [*parts, name]))
                    elif stat.S_ISREG(info.st_mode):
                        _copy_file(source, dest, name, gid, where)
                    else:
                        raise SealRefused(f"/{where} is {describe(info)}, which an environment never holds")
                    count += 1
            finally:
                os.close(source)
                os.close(dest)
    finally:
        for source, dest, _parts in stack:
            os.close(source)
            os.close(dest)
    return count


def _copy_file(source: int, dest: int, name: str, gid: int, where: str) -> None:
    src = os.open(name, READ_FLAGS, dir_fd=source)
    with closing(src):
        info = os.fstat(src)
        if not stat.S_ISREG(info.st_mode):
            raise SealRefused(f"/{where} changed while it was sealed")
        out = os.open(name, CREATE_FLAGS, 0o600, dir_fd=dest)
        with closing(out):
            while True:
                chunk = os.read(src, 1 << 20)
                if not chunk:
                    break
                os.write(out, chunk)
            os.fchown(out, 0, gid)
            os.fchmod(out, stat.S_IMODE(info.st_mode) & ~WRITE_BITS & ~ID_BITS)
            os.utime(out, ns=(info.st_atime_ns, info.st_mtime_ns))


def unsafe_in(entries: Iterable[tuple[str, os.stat_result | None]]) -> list[str]:
    """The entries that are symlinks, not root's, or writable by group or others (for audits)."""
    return [
        f"{name} is {describe(info)}"
        for name, info in entries
        if info is None or stat.S_ISLNK(info.st_mode) or info.st_uid != 0 or info.st_mode & WRITE_BITS
    ]
