"""The allowlist for an environment's spec (a pinned ``requirements.txt``) and its name.

A spec is accepted only if every non-blank, non-comment line is ``name==version``
(PEP 508 name, a plain PEP 440 version, optional ``[extras]``): no options (``-e``,
``-r``, ``--index-url``), no URLs or paths, no environment markers, no shell
metacharacters. Each package must be in the site's wheelhouse (the directory of
wheels the build job installs from with ``pip --no-index``) in that version, so an
unknown package is refused before any job is submitted. A conda ``environment.yml`` is
refused with a message saying why it cannot be built here.

Pure module: the wheelhouse is given as a list of wheel file names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from spawners import names

ENV_NAME_PATTERN = names.PROJECT_ENVIRONMENT
ENV_NAME_RULE = names.PROJECT_ENVIRONMENT_RULE
MAX_SPEC_LINES = 200
MAX_SPEC_BYTES = 64 * 1024
# PEP 508 names, PEP 440 public versions without local parts ("+cpu") or wildcards.
_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_VERSION = r"[0-9]+(?:\.[0-9]+)*(?:(?:a|b|rc)[0-9]+)?(?:\.post[0-9]+)?(?:\.dev[0-9]+)?"
PINNED_LINE_PATTERN = re.compile(
    rf"(?P<name>{_NAME})(?:\[(?P<extras>{_NAME}(?:,{_NAME})*)\])?==(?P<version>{_VERSION})"
)
SHELL_METACHARACTERS = frozenset(";&|`$<>(){}\\\"'*?!~\t\r")
WHEEL_FILE_PATTERN = re.compile(r"(?P<name>[A-Za-z0-9_.]+)-(?P<version>[^-]+)(?:-[^-]+)?-[^-]+-[^-]+-[^-]+\.whl")


# A conda environment.yml's top-level keys. Such a spec cannot be built here: conda packages come
# from conda channels, which the site's machines cannot reach (docs/environments.md).
CONDA_KEY_PATTERN = re.compile(r"(?:name|channels|dependencies|prefix|variables)\s*:(?:\s|$)")
CONDA_REFUSAL = (
    "a conda environment.yml cannot be built on this site: conda packages come from conda channels, which "
    "its machines cannot reach (builds install only wheels from the site's wheelhouse); give a pinned "
    "requirements.txt of name==version lines instead (pip: entries of an environment.yml can be copied into one)"
)
CONDA_FILE_SUFFIXES = (".yml", ".yaml")


class SpecError(ValueError):
    """A spec or a name broke a rule; the message names the line (or the field) and the rule."""


@dataclass(frozen=True)
class Requirement:
    """One pinned package: ``name`` as written, its normalised form, the version."""

    name: str
    normalized: str
    version: str
    extras: tuple[str, ...] = ()

    @property
    def line(self) -> str:
        extras = f"[{','.join(self.extras)}]" if self.extras else ""
        return f"{self.name}{extras}=={self.version}"


def normalize_name(name: str) -> str:
    """PEP 503 normalisation: ``Foo.Bar_baz`` -> ``foo-bar-baz``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def check_env_name(name: object) -> str:
    """The environment's name, or :class:`SpecError` naming the rule."""
    if not isinstance(name, str) or not ENV_NAME_PATTERN.fullmatch(name):
        raise SpecError(f"NAME: must be {ENV_NAME_RULE}; got {name!r}")
    return name


def _line_problem(text: str) -> str | None:
    """Why ``text`` (one stripped line) is not a plain pin, in words; None if it is one."""
    if text.startswith("-"):
        option = text.split()[0].split("=")[0]
        return f"pip options such as {option} are not allowed (only name==version lines)"
    if "://" in text or text.startswith(("/", ".", "~")) or " @ " in text or "@" in text:
        return "URLs and paths are not allowed (packages come from the site's wheelhouse)"
    if re.match(rf"{_NAME}\s*(?:\[[^]]*\])?\s*(?:>=|<=|~=|!=|===|>|<)", text) or (
        re.fullmatch(_NAME, text) is not None
    ):
        return "every package must be pinned to one version with == (e.g. numpy==2.1.3)"
    if re.match(rf"{_NAME}==\S+\s*;", text):
        return "environment markers (; ...) are not allowed"
    bad = sorted({char for char in text if char in SHELL_METACHARACTERS})
    if bad:
        return f"shell metacharacters are not allowed: {' '.join(bad)}"
    if " " in text:
        return "spaces are not allowed inside a requirement"
    return None


def parse_spec(text: str) -> list[Requirement]:
    """The pinned requirements of a ``requirements.txt`` text, or :class:`SpecError` naming the line."""
    if len(text.encode("utf-8", errors="replace")) > MAX_SPEC_BYTES:
        raise SpecError(f"spec: larger than {MAX_SPEC_BYTES} bytes")
    if "\0" in text:
        raise SpecError("spec: contains a NUL byte (not a text file)")
    if any(CONDA_KEY_PATTERN.match(line) for line in text.splitlines()):
        raise SpecError(f"spec: {CONDA_REFUSAL}")
    requirements: list[Requirement] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        text_line = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if not text_line:
            continue
        shown = raw.strip()[:80]
        match = PINNED_LINE_PATTERN.fullmatch(text_line)
        if match is None:
            problem = _line_problem(text_line) or "not a name==version line (e.g. numpy==2.1.3)"
            raise SpecError(f"spec line {number} ({shown!r}): {problem}")
        normalized = normalize_name(match["name"])
        if normalized in seen:
            raise SpecError(
                f"spec line {number} ({shown!r}): {match['name']} is already pinned on line {seen[normalized]}"
            )
        seen[normalized] = number
        extras = tuple(match["extras"].split(",")) if match["extras"] else ()
        requirements.append(Requirement(match["name"], normalized, match["version"], extras))
        if len(requirements) > MAX_SPEC_LINES:
            raise SpecError(f"spec: more than {MAX_SPEC_LINES} packages")
    if not requirements:
        raise SpecError("spec: no packages (give name==version lines)")
    return requirements


def check_spec_file_name(file_name: str) -> None:
    """:class:`SpecError` for an ``environment.yml``-style file name (refused whatever it holds)."""
    if file_name.lower().endswith(CONDA_FILE_SUFFIXES):
        raise SpecError(f"spec: {file_name.rsplit('/', 1)[-1]}: {CONDA_REFUSAL}")


def wheelhouse_index(wheel_files: Iterable[str]) -> dict[str, set[str]]:
    """Normalised package name -> versions, from wheel file names (others ignored)."""
    index: dict[str, set[str]] = {}
    for file_name in wheel_files:
        match = WHEEL_FILE_PATTERN.fullmatch(file_name)
        if match:
            index.setdefault(normalize_name(match["name"]), set()).add(match["version"])
    return index


def check_against_wheelhouse(requirements: Iterable[Requirement], index: Mapping[str, set[str]], where: str) -> None:
    """:class:`SpecError` for the first package (or version) the wheelhouse lacks."""
    for requirement in requirements:
        versions = index.get(requirement.normalized)
        if not versions:
            raise SpecError(
                f"spec: unknown package {requirement.name!r}: not in the site's wheelhouse {where} "
                "(ask the centre to add its wheel)"
            )
        if requirement.version not in versions:
            offered = ", ".join(sorted(versions))
            raise SpecError(
                f"spec: {requirement.name}=={requirement.version} is not in the site's wheelhouse {where}; "
                f"versions there: {offered}"
            )


def render_spec(requirements: Iterable[Requirement]) -> str:
    """The normalised spec written beside the environment (what the build installs)."""
    return "".join(f"{requirement.line}\n" for requirement in requirements)
