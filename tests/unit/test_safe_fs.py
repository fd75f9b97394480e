"""The no-follow file operations of privileged code (spawners/safe_fs.py), on temporary trees.

Run as root (as here) the ownership checks are real; the tests that need another owner use chown.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from spawners import safe_fs

pytestmark = pytest.mark.unit

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown to another user)")
NOBODY = 65534


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A file only root may read, outside the tree the tests act in."""
    path = tmp_path / "root-only" / "secret.txt"
    path.parent.mkdir(mode=0o700)
    path.write_text("SECRET\n")
    os.chmod(path, 0o600)
    return path


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        pytest.param("envs", True, id="plain"),
        pytest.param("a.moved-aside-1", True, id="dots"),
        pytest.param("", False, id="empty"),
        pytest.param("..", False, id="parent"),
        pytest.param(".", False, id="self"),
        pytest.param("a/b", False, id="slash"),
    ],
)
def test_check_name(name: str, ok: bool) -> None:
    if ok:
        assert safe_fs.check_name(name) == name
    else:
        with pytest.raises(ValueError, match="single path component"):
            safe_fs.check_name(name)


def test_open_beneath_refuses_a_symlinked_directory(tmp_path: Path, secret: Path) -> None:
    (tmp_path / "tree" / "real").mkdir(parents=True)
    (tmp_path / "tree" / "link").symlink_to(secret.parent)
    base = safe_fs.open_base(tmp_path / "tree")
    with safe_fs.closing(base):
        os.close(safe_fs.open_beneath(base, ["real"]))
        with pytest.raises(OSError) as refused:
            safe_fs.open_beneath(base, ["link"])
    assert refused.value.errno in (errno.ELOOP, errno.ENOTDIR)


def _read(directory: Path, name: str, owners=None, **kwargs) -> safe_fs.ReadResult:
    fd = safe_fs.open_base(directory)
    with safe_fs.closing(fd):
        return safe_fs.read_regular(fd, name, owners={os.geteuid()} if owners is None else owners, **kwargs)


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        pytest.param(lambda d, s: (d / "log").symlink_to(s), "symbolic link", id="symlink"),
        pytest.param(lambda d, s: os.link(s, d / "log"), "hard link", id="hard-link"),
        pytest.param(lambda d, s: (d / "log").mkdir(), "not a regular file", id="directory"),
        pytest.param(lambda d, s: os.mkfifo(d / "log"), "not a regular file", id="fifo"),
    ],
)
def test_read_regular_never_shows_what_a_link_points_at(tmp_path: Path, secret: Path, make, problem: str) -> None:
    directory = tmp_path / "version"
    directory.mkdir()
    make(directory, secret)
    result = _read(directory, "log", owners={0, os.geteuid()})
    assert result.data == b"" and problem in result.problem


@root_only
def test_read_regular_wants_the_expected_owner(tmp_path: Path) -> None:
    (tmp_path / "log").write_text("someone else's\n")
    os.chown(tmp_path / "log", NOBODY, NOBODY)
    result = _read(tmp_path, "log", owners={0})
    assert result.data == b"" and "owned by uid 65534" in result.problem
    assert _read(tmp_path, "log", owners={NOBODY}).data == b"someone else's\n"


def test_read_regular_from_an_offset_and_its_tail(tmp_path: Path) -> None:
    (tmp_path / "log").write_bytes(b"0123456789")
    assert _read(tmp_path, "log", offset=4, limit=3).data == b"456"
    tail = _read(tmp_path, "log", limit=3, tail=True)
    assert (tail.data, tail.size) == (b"789", 10)
    assert _read(tmp_path, "log", offset=20).data == b"" and _read(tmp_path, "missing").missing


def test_read_beneath_refuses_a_symlink_on_the_way(tmp_path: Path, secret: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "logs").symlink_to(secret.parent)
    result = safe_fs.read_beneath(home, ["logs", "secret.txt"], owners={0, os.geteuid()})
    assert result.data == b"" and "symbolic link" in result.problem


def test_write_file_replaces_a_symlink_instead_of_writing_through_it(tmp_path: Path, secret: Path) -> None:
    (tmp_path / "kernel.json").symlink_to(secret)
    fd = safe_fs.open_base(tmp_path)
    with safe_fs.closing(fd):
        safe_fs.write_file(fd, "kernel.json", b"{}\n", uid=os.geteuid(), gid=os.getegid(), mode=0o640)
    assert secret.read_text() == "SECRET\n"
    info = os.lstat(tmp_path / "kernel.json")
    assert stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o640
    assert sorted(os.listdir(tmp_path)) == ["kernel.json", "root-only"]  # no temporary file left


def test_make_dir_refuses_a_symlink_and_move_renames_the_link_itself(tmp_path: Path, secret: Path) -> None:
    (tmp_path / "shared").symlink_to(secret.parent)
    before = os.stat(secret.parent)
    fd = safe_fs.open_base(tmp_path)
    with safe_fs.closing(fd):
        with pytest.raises(safe_fs.UnsafeEntry, match="a symbolic link"):
            safe_fs.make_dir(fd, "shared", uid=0, gid=0, mode=0o3770)
        (tmp_path / "shared.aside").touch()
        moved = safe_fs.move(fd, "shared", fd, "shared.aside")
        assert moved == "shared.aside.2" and os.readlink(tmp_path / moved) == str(secret.parent)
        os.close(safe_fs.make_dir(fd, "shared", uid=os.geteuid(), gid=os.getegid(), mode=0o3770))
    assert stat.S_IMODE(os.lstat(tmp_path / "shared").st_mode) == 0o3770
    after = os.stat(secret.parent)
    assert (after.st_uid, after.st_gid, after.st_mode) == (before.st_uid, before.st_gid, before.st_mode)


@pytest.mark.parametrize(
    ("link_dir", "target", "inside"),
    [
        pytest.param(["v", "bin"], "python", True, id="sibling"),
        pytest.param(["v"], "lib", True, id="lib64"),
        pytest.param(["v", "bin"], "../lib/x", True, id="up-and-in"),
        pytest.param(["v", "bin"], "../../elsewhere", False, id="escapes"),
        pytest.param(["v", "bin"], "/usr/bin/python3.11", False, id="absolute"),
    ],
)
def test_trusted_target(link_dir, target, inside) -> None:
    assert safe_fs.trusted_target(link_dir, target, ["v"]) is inside


def _tree(top: Path) -> None:
    (top / "bin").mkdir(parents=True)
    (top / "lib" / "site-packages").mkdir(parents=True)
    (top / "lib" / "site-packages" / "mod.py").write_text("X = 1\n")
    os.chmod(top / "lib" / "site-packages" / "mod.py", 0o664)
    (top / "bin" / "tool").write_text("#!/bin/sh\n")
    os.chmod(top / "bin" / "tool", 0o6775)  # setuid/setgid and group-writable: none of it survives
    os.chmod(top / "lib", 0o2775)
    (top / "bin" / "python").symlink_to("/usr/bin/python3.11")
    (top / "bin" / "python3").symlink_to("python")
    os.utime(top / "lib" / "site-packages" / "mod.py", ns=(1_000_000_000, 2_000_000_000))


def _seal(top: Path, into: Path) -> int:
    into.mkdir()
    src, dst = safe_fs.open_base(top), safe_fs.open_base(into)
    with safe_fs.closing(src), safe_fs.closing(dst):
        return safe_fs.copy_sealed(src, dst, gid=os.getegid(), top_parts=[p for p in str(into).split("/") if p])


def test_copy_sealed_makes_new_closed_inodes(tmp_path: Path) -> None:
    _tree(tmp_path / "built")
    held = open(tmp_path / "built" / "lib" / "site-packages" / "mod.py", "a")  # the builder keeps a descriptor
    count = _seal(tmp_path / "built", tmp_path / "sealed")
    held.write("import evil\n")
    held.close()
    sealed = tmp_path / "sealed"
    assert count == 7
    assert (sealed / "lib" / "site-packages" / "mod.py").read_text() == "X = 1\n"  # the held descriptor misses it
    for path in [sealed, *sealed.rglob("*")]:
        info = os.lstat(path)
        assert info.st_uid == 0 or os.geteuid() != 0
        assert stat.S_ISLNK(info.st_mode) or not info.st_mode & 0o022, path
    tool = os.lstat(sealed / "bin" / "tool")
    assert stat.S_IMODE(tool.st_mode) == 0o755
    assert os.readlink(sealed / "bin" / "python") == "/usr/bin/python3.11"
    assert os.lstat(sealed / "lib" / "site-packages" / "mod.py").st_mtime_ns == 2_000_000_000  # .pyc checks


@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(
            lambda top, tmp: (top / "lib" / "evil.pth").symlink_to(tmp / "users-own.pth"),
            "a user may change",
            id="link-to-a-users-file",
        ),
        pytest.param(
            lambda top, tmp: (top / "lib" / "up").symlink_to("../../elsewhere"),
            "a user may change",
            id="relative-link-out",
        ),
        pytest.param(lambda top, tmp: os.mkfifo(top / "lib" / "pipe"), "never holds", id="fifo"),
    ],
)
def test_copy_sealed_refuses_what_a_user_could_change_later(tmp_path: Path, make, message: str) -> None:
    _tree(tmp_path / "built")
    (tmp_path / "users-own.pth").write_text("")
    os.chmod(tmp_path, 0o777)  # a user-writable place (like a home)
    try:
        make(tmp_path / "built", tmp_path)
        with pytest.raises(safe_fs.SealRefused, match=message):
            _seal(tmp_path / "built", tmp_path / "sealed")
    finally:
        os.chmod(tmp_path, 0o700)


def test_root_only_path() -> None:
    assert safe_fs.root_only_path("/usr/bin/python3.11")
    assert not safe_fs.root_only_path("/tmp/does-not-exist-hpchub")
