"""Root's side of a project space: put the layout right, hand finished builds to root, write kernelspecs.

Runs as root only (``ensure_space``: ``demo up``, ``hpchub env sync|create``, the demo's spawns;
and before root reads the ready state: ``env list|log|--wait``, the pages and API of a hub running
as root). Every operation acts on descriptors opened with O_NOFOLLOW (:mod:`spawners.safe_fs`):

* **Layout.** ``P/`` is set to root:hpc-P 2750 first, so from then on no member can rename
  anything in it; then ``shared/`` (3770), ``envs/`` and ``kernels/`` (2750). An entry that is not
  what belongs there (a symlink, a file, a directory not owned by root where root's belongs, or
  anything in ``P/`` besides those three that is not root's and closed, e.g. a member's
  ``labextensions/``) is *moved aside* (renamed ``P/NAME.moved-aside-STAMP``; out of
  ``kernels/`` too, where Jupyter would still read it) and reported, never followed or trusted.
* **Sealing.** A version whose status file says ready or failed and whose job has ended is
  copied into new root-owned inodes (:func:`spawners.safe_fs.copy_sealed`), the copy swapped in
  and ``.sealed`` written; the builder's tree is removed. A copy rather than a chown in place:
  a builder may keep a hard link to, or an open write descriptor on, a file of their tree.
  A version that holds something a sealed copy may not (a symlink to a user's file, a FIFO) is
  marked failed with the reason, and never offered.
* **Kernels.** ``kernels/P-NAME/kernel.json`` is written by root for the default (newest sealed
  ready) version, and removed when there is none.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone

from hub.envs import space as sp
from spawners import safe_fs

log = logging.getLogger(__name__)
SEAL_REFUSED_FILE = ".seal-refused"


@dataclass
class SpaceReport:
    """What a pass changed, one sentence each (shown by ``env sync``, ``demo up``, logged at spawns)."""

    moved_aside: list[str] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)
    sealed: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [*self.moved_aside, *self.fixed, *self.sealed]

    def extend(self, other: SpaceReport) -> None:
        self.moved_aside += other.moved_aside
        self.fixed += other.fixed
        self.sealed += other.sealed


def _stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def _move_aside(space: sp.ProjectSpace, space_fd: int, parent_fd: int, relative: str, why: str,
                report: SpaceReport) -> None:  # fmt: skip
    """Rename ``P/relative`` (in ``parent_fd``) to ``P/relative-with-+.moved-aside-STAMP`` in ``P/``."""
    name = relative.rsplit("/", 1)[-1]
    new_name = safe_fs.move(parent_fd, name, space_fd, f"{relative.replace('/', '+')}{sp.MOVED_ASIDE}{_stamp()}")
    message = f"moved aside {space.path / relative} ({why}): now {space.path / new_name}"
    report.moved_aside.append(message)
    log.warning("%s", message)


def _closed_dir(space: sp.ProjectSpace, space_fd: int, parent_fd: int, relative: str, gid: int, mode: int,
                report: SpaceReport) -> int:  # fmt: skip
    """Root's directory ``relative`` (in ``parent_fd``) with ``mode``: what else is there is moved aside first."""
    name = relative.rsplit("/", 1)[-1]
    info = safe_fs.lstat_at(name, parent_fd)
    if info is not None and not (stat.S_ISDIR(info.st_mode) and info.st_uid == 0):
        _move_aside(space, space_fd, parent_fd, relative, f"{safe_fs.describe(info)} where root's directory belongs",
                    report)  # fmt: skip
        info = None
    fd = safe_fs.make_dir(parent_fd, name, uid=0, gid=gid, mode=mode)
    if info is not None and (stat.S_IMODE(info.st_mode), info.st_gid) != (mode, gid):
        report.fixed.append(f"{space.path / relative}: mode {stat.filemode(info.st_mode)} -> "
                            f"{stat.filemode(stat.S_IFDIR | mode)}")  # fmt: skip
    return fd


def repair_layout(space: sp.ProjectSpace, gid: int) -> SpaceReport:
    """PROJECT_ROOT/P with shared/, envs/ and kernels/, owned and moded as docs/environments.md lays out; what a member
    swapped or planted is moved aside. ``OSError``/``UnsafeEntry`` if P itself is not a directory."""
    report = SpaceReport()
    space.root.mkdir(parents=True, exist_ok=True)
    root_fd = safe_fs.open_base(space.root)
    with safe_fs.closing(root_fd):
        info = os.fstat(root_fd)
        if info.st_uid != 0 or info.st_mode & safe_fs.WRITE_BITS:
            raise safe_fs.UnsafeEntry(str(space.root), f"PROJECT_ROOT is {safe_fs.describe(info)}: it must be "
                                      "root's and writable by no one else")  # fmt: skip
        if info.st_mode & 0o005 != 0o005:
            os.fchmod(root_fd, 0o755)  # everyone may pass through PROJECT_ROOT; each space is closed
        before = safe_fs.lstat_at(space.project, root_fd)
        space_fd = safe_fs.make_dir(root_fd, space.project, uid=0, gid=gid, mode=sp.PROJECT_DIR_MODE)
    with safe_fs.closing(space_fd):
        if before is not None and stat.S_IMODE(before.st_mode) != sp.PROJECT_DIR_MODE:
            report.fixed.append(f"{space.path}: mode {stat.filemode(before.st_mode)} -> "
                                f"{stat.filemode(stat.S_IFDIR | sp.PROJECT_DIR_MODE)}")  # fmt: skip
        for entry, mode in sp.SPACE_ENTRIES.items():
            os.close(_closed_dir(space, space_fd, space_fd, entry, gid, mode, report))
        for name in safe_fs.listdir(space_fd):
            if name in sp.SPACE_ENTRIES or sp.is_moved_aside(name):
                continue
            info = safe_fs.lstat_at(name, space_fd)
            if safe_fs.unsafe_in([(name, info)]):
                _move_aside(space, space_fd, space_fd, name, f"{safe_fs.describe(info)}: only root writes {space.path}",
                            report)  # fmt: skip
        _repair_envs(space, space_fd, gid, report)
        _repair_kernels(space, space_fd, gid, report)
    return report


def _repair_envs(space: sp.ProjectSpace, space_fd: int, gid: int, report: SpaceReport) -> None:
    envs = safe_fs.open_dir("envs", space_fd)
    with safe_fs.closing(envs):
        for name in safe_fs.listdir(envs):
            info = safe_fs.lstat_at(name, envs)
            if info is None or not (stat.S_ISDIR(info.st_mode) and info.st_uid == 0):
                _move_aside(space, space_fd, envs, f"envs/{name}", f"{safe_fs.describe(info)} in root's envs/", report)
                continue
            env = safe_fs.make_dir(envs, name, uid=0, gid=gid, mode=sp.CLOSED_DIR_MODE)
            with safe_fs.closing(env):
                for entry in safe_fs.listdir(env):
                    info = safe_fs.lstat_at(entry, env)
                    if sp.version_numbers([entry]) and info is not None and not stat.S_ISDIR(info.st_mode):
                        _move_aside(space, space_fd, env, f"envs/{name}/{entry}",
                                    f"{safe_fs.describe(info)} where a version directory belongs", report)  # fmt: skip


def _repair_kernels(space: sp.ProjectSpace, space_fd: int, gid: int, report: SpaceReport) -> None:
    """kernels/ holds only root's closed P-NAME directories with root's files (kernel.json is rewritten
    by :func:`write_kernel`); a builder's kernel directory of the old layout is moved aside too."""
    kernels = safe_fs.open_dir("kernels", space_fd)
    with safe_fs.closing(kernels):
        for name in safe_fs.listdir(kernels):
            info = safe_fs.lstat_at(name, kernels)
            if info is None or not (stat.S_ISDIR(info.st_mode) and info.st_uid == 0):
                _move_aside(space, space_fd, kernels, f"kernels/{name}", f"{safe_fs.describe(info)} in root's "
                            "kernels/ (Jupyter reads it)", report)  # fmt: skip
                continue
            kernel = safe_fs.make_dir(kernels, name, uid=0, gid=gid, mode=sp.CLOSED_DIR_MODE)
            with safe_fs.closing(kernel):
                for entry in safe_fs.listdir(kernel):
                    info = safe_fs.lstat_at(entry, kernel)
                    if safe_fs.unsafe_in([(entry, info)]):
                        _move_aside(space, space_fd, kernel, f"kernels/{name}/{entry}",
                                    f"{safe_fs.describe(info)} in a kernelspec", report)  # fmt: skip


# --- sealing ------------------------------------------------------------------------------------------------


def seal_version(space: sp.ProjectSpace, env_fd: int, name: str, number: int, gid: int) -> str:
    """Hand one finished version to root (see the module's docstring): what was done, in a sentence."""
    where = space.version_dir(name, number)
    label = str(number)
    staging = safe_fs.free_name(env_fd, f".{label}.sealing")
    version_fd = safe_fs.open_dir(label, env_fd)
    with safe_fs.closing(version_fd):
        builder = os.fstat(version_fd).st_uid
        os.mkdir(staging, 0o700, dir_fd=env_fd)
        copy_fd = safe_fs.open_dir(staging, env_fd)
        try:
            with safe_fs.closing(copy_fd):
                try:
                    safe_fs.copy_sealed(version_fd, copy_fd, gid=gid, top_parts=[part for part in str(where).split("/")
                                                                                 if part])  # fmt: skip
                except safe_fs.SealRefused as exc:
                    safe_fs.remove_tree(env_fd, staging)
                    return _refuse(space, env_fd, name, number, gid, str(exc))
                record = {"sealed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "builder_uid": builder}
                safe_fs.write_file(copy_fd, sp.SEALED_FILE, (json.dumps(record) + "\n").encode(), uid=0, gid=gid,
                                   mode=0o640)  # fmt: skip
                os.fchown(copy_fd, 0, gid)
                os.fchmod(copy_fd, sp.CLOSED_DIR_MODE)
        except BaseException:
            safe_fs.remove_tree(env_fd, staging)
            raise
    old = safe_fs.move(env_fd, label, env_fd, f".{label}.unsealed")
    os.rename(staging, label, src_dir_fd=env_fd, dst_dir_fd=env_fd)
    safe_fs.remove_tree(env_fd, old)
    return f"sealed {where} (now root's; built by uid {builder})"


def _refuse(space: sp.ProjectSpace, env_fd: int, name: str, number: int, gid: int, reason: str) -> str:
    """A version that cannot be sealed: root takes its directory (so the builder changes nothing more) and
    marks it failed with the reason; it is never offered."""
    version_fd = safe_fs.open_dir(str(number), env_fd)
    with safe_fs.closing(version_fd):
        os.fchown(version_fd, 0, gid)
        os.fchmod(version_fd, sp.CLOSED_DIR_MODE)
        safe_fs.write_file(version_fd, SEAL_REFUSED_FILE, (reason + "\n").encode(), uid=0, gid=gid, mode=0o640)
        safe_fs.write_file(version_fd, sp.STATUS_FILE, b"failed\n", uid=0, gid=gid, mode=0o640)
    message = f"not sealed {space.version_dir(name, number)}: {reason}; marked failed"
    log.warning("%s", message)
    return message


def seal_finished(
    space: sp.ProjectSpace, active_jobs: Mapping[str, bool] | None, gid: int | None = None
) -> SpaceReport:
    """Seal every version whose job wrote its status and has ended (``active_jobs``: job id -> still in
    Slurm; a job it does not list is not sealed yet, None: Slurm did not answer), then point each
    environment's kernel at its default. Needs root; nothing happens for anyone else."""
    report = SpaceReport()
    if os.geteuid() != 0:
        return report
    try:
        space_fd = space.open()
    except OSError:
        return report  # not made yet, or not a directory: repair_layout's job
    with safe_fs.closing(space_fd):
        info = os.fstat(space_fd)
        if info.st_uid != 0 or info.st_mode & safe_fs.WRITE_BITS:
            return report  # members may still restructure it: only repair_layout acts on such a space
        gid = info.st_gid if gid is None else gid
        for name in sp.environment_names(space):
            for version in sp.read_environment(space, name).versions:
                if version.sealed or not version.finished:
                    continue
                if version.job_id and (active_jobs is None or active_jobs.get(version.job_id, True)):
                    continue  # its job may still write (the log's last line): seal once it has ended
                try:
                    env_fd = space.open("envs", name)
                except OSError:
                    continue
                with safe_fs.closing(env_fd):
                    if not _refused(env_fd, version.version):
                        report.sealed.append(seal_version(space, env_fd, name, version.version, gid))
            write_kernel(space, space_fd, name, gid, report)
    return report


def _refused(env_fd: int, number: int) -> bool:
    try:
        version_fd = safe_fs.open_dir(str(number), env_fd)
    except OSError:
        return True
    with safe_fs.closing(version_fd):
        return safe_fs.lstat_at(SEAL_REFUSED_FILE, version_fd) is not None


def write_kernel(space: sp.ProjectSpace, space_fd: int, name: str, gid: int, report: SpaceReport | None = None) -> None:
    """``kernels/P-NAME/kernel.json`` for the default version (root's, 0640), rewritten only when it differs;
    removed with its directory when no version is ready."""
    info = sp.read_environment(space, name)
    kernels = safe_fs.open_dir("kernels", space_fd)
    with safe_fs.closing(kernels):
        kernel = sp.kernel_name(space.project, name)
        if info.default_version is None:
            if safe_fs.lstat_at(kernel, kernels) is not None:
                safe_fs.remove_tree(kernels, kernel)
            return
        python = str(space.version_dir(name, info.default_version) / "bin" / "python")
        text = json.dumps(sp.kernel_spec(space.project, name, info.default_version, python), indent=1,
                          sort_keys=True) + "\n"  # fmt: skip
        kernel_fd = safe_fs.make_dir(kernels, kernel, uid=0, gid=gid, mode=sp.CLOSED_DIR_MODE)
        with safe_fs.closing(kernel_fd):
            current = safe_fs.read_regular(kernel_fd, sp.KERNEL_FILE, owners={0})
            if current.problem or current.missing or current.data.decode(errors="replace") != text:
                safe_fs.write_file(kernel_fd, sp.KERNEL_FILE, text.encode(), uid=0, gid=gid, mode=sp.KERNEL_FILE_MODE)
                if report is not None:
                    report.fixed.append(f"{space.kernel_dir(name) / sp.KERNEL_FILE}: v{info.default_version}")
