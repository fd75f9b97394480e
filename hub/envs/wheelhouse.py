"""The demo's site wheelhouse: a tiny pure-Python package plus ipykernel and its dependencies.

Compute nodes at real sites are often offline, so build jobs install only from a directory
of wheels. ``hpchub demo up`` fills ``STATE/wheelhouse`` once: it writes the wheel of
``hpchub-hello`` (a one-module package made here, no build tools needed) and downloads the
wheels of ``ipykernel`` (the version in the hub's venv) with ``pip download`` from the
package index the installation used.
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

HELLO_NAME = "hpchub_hello"
HELLO_VERSION = "1.0"
HELLO_MODULE = '''"""hpchub-hello: the demo's tiny package, installed into project environments from the wheelhouse."""

__version__ = "1.0"


def greet(name: str = "world") -> str:
    return f"hello, {name}, from a project environment"
'''
STAMP = ".hpchub-wheelhouse"
DOWNLOAD_TIMEOUT = 600


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def write_hello_wheel(directory: Path) -> Path:
    """``hpchub_hello-1.0-py3-none-any.whl`` in ``directory`` (a valid wheel, built byte by byte)."""
    dist_info = f"{HELLO_NAME}-{HELLO_VERSION}.dist-info"
    files = {
        f"{HELLO_NAME}.py": HELLO_MODULE.encode(),
        f"{dist_info}/METADATA": (
            f"Metadata-Version: 2.1\nName: hpchub-hello\nVersion: {HELLO_VERSION}\n"
            "Summary: the hpchub demo's tiny package for project environments\n"
        ).encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: hpchub\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{dist_info}/top_level.txt": f"{HELLO_NAME}\n".encode(),
    }
    record = [_record_line(path, data) for path, data in files.items()] + [f"{dist_info}/RECORD,,"]
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = directory / f"{HELLO_NAME}-{HELLO_VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as wheel:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            wheel.writestr(info, data)
    return path


def ensure_demo_wheelhouse(directory: Path, ipykernel_requirement: str, say=print) -> None:
    """Fill ``directory`` once (a stamp file marks it done); world-readable like the notebook venv."""
    stamp = directory / STAMP
    if stamp.exists() and stamp.read_text().strip() == ipykernel_requirement:
        return
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o755)
    write_hello_wheel(directory)
    argv = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--only-binary=:all:",
        "--dest",
        str(directory),
        ipykernel_requirement,
    ]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=DOWNLOAD_TIMEOUT, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"filling the wheelhouse {directory} failed: {result.stderr.strip()[-500:]}")
    for entry in directory.iterdir():
        os.chmod(entry, 0o644)
    stamp.write_text(ipykernel_requirement + "\n")
    say(f"wheelhouse: {directory} ({len(list(directory.glob('*.whl')))} wheels, hpchub-hello=={HELLO_VERSION})")
