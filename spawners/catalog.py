"""The notebook environment catalogue (``images/catalog.toml``).

The catalogue lists the environments a user may pick in the spawn form. Each
``[[environment]]`` table has these keys:

``id``
    safe identifier, ``^[a-z][a-z0-9-]{0,39}$``; what ``user_options["environment"]`` names.
``name``, ``description``
    text shown in the spawn form.
``kind``
    ``"venv"`` (a Python virtual environment on shared storage) or ``"apptainer"``
    (a ``.sif`` image).
``path`` / ``image``
    for ``venv``: the venv prefix directory (``path``); for ``apptainer``: the
    image file (``image``). Exactly the one that fits the kind must be given; the
    value must be absolute after placeholders are filled.
``gpu``, ``default``
    booleans. Exactly one entry is the default.

``path`` and ``image`` may contain ``{placeholders}`` (for example ``{demo_venv}``)
filled from the ``variables`` mapping given to :func:`load_catalogue`; an unknown
placeholder is an error in the default entry, ``{{`` and ``}}`` stand for literal braces.
In any other entry a placeholder the site does not set (or sets to ``""``) marks the entry
*not available here* (for example an image the site has not built yet): it stays in the
catalogue, the spawn form shows it disabled with the reason, and choosing it is refused.

This module is pure: it reads one file and does no other I/O.
"""

from __future__ import annotations

import re
import string
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from spawners import names

ENVIRONMENT_ID_PATTERN = names.CATALOGUE_ID
PLACEHOLDER_NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
KINDS = ("venv", "apptainer")
# The location key each kind needs; the other one must be absent.
LOCATION_KEY_BY_KIND = {"venv": "path", "apptainer": "image"}
REQUIRED_KEYS = ("id", "name", "description", "kind", "gpu", "default")
KNOWN_KEYS = frozenset(REQUIRED_KEYS) | {"path", "image"}


class CatalogueError(ValueError):
    """The catalogue file is unreadable or an entry breaks a rule.

    The message names the entry (by id, or by position when the id itself is
    the problem) and the field.
    """


@dataclass(frozen=True)
class Environment:
    """One notebook environment users can choose.

    ``path`` is set for ``venv`` entries and ``image`` for ``apptainer`` ones;
    the other is ``None``. Both are absolute, with placeholders filled.
    """

    id: str
    name: str
    description: str
    kind: str
    path: str | None
    image: str | None
    gpu: bool
    default: bool
    unavailable_reason: str = ""  # "" when usable; else why not (an unset placeholder)
    # A published project environment (hub/envs/publish.py): the server runs in the default
    # entry and this kernel (its venv's python) is the default kernel. "" for catalog.toml entries.
    kernel: str = ""

    @property
    def available(self) -> bool:
        return not self.unavailable_reason


class Catalogue:
    """The catalogue's entries in file order, with look-up by id."""

    def __init__(self, entries: Sequence[Environment]) -> None:
        self._entries: tuple[Environment, ...] = tuple(entries)
        self._by_id: dict[str, Environment] = {entry.id: entry for entry in self._entries}
        if len(self._by_id) != len(self._entries):
            raise CatalogueError("catalogue: environment ids must be unique")
        defaults = [entry for entry in self._entries if entry.default]
        if len(defaults) != 1:
            raise CatalogueError(f"catalogue: exactly one environment must have default = true; found {len(defaults)}")
        self._default = defaults[0]

    @property
    def entries(self) -> tuple[Environment, ...]:
        """All environments, in file order."""
        return self._entries

    @property
    def default(self) -> Environment:
        """The environment used when the user chooses none."""
        return self._default

    def get(self, environment_id: str) -> Environment | None:
        """The environment with this id, or ``None``."""
        return self._by_id.get(environment_id)

    def ids(self) -> tuple[str, ...]:
        """Every environment id, in file order."""
        return tuple(entry.id for entry in self._entries)

    def __iter__(self) -> Iterator[Environment]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, environment_id: object) -> bool:
        return isinstance(environment_id, str) and environment_id in self._by_id

    def __repr__(self) -> str:
        return f"Catalogue(ids={self.ids()!r}, default={self._default.id!r})"


def load_catalogue(path: str | Path, variables: Mapping[str, str]) -> Catalogue:
    """Read and check the catalogue file at ``path``.

    ``variables`` fills the ``{placeholders}`` in ``path``/``image`` values.
    Raises :class:`CatalogueError` on any problem, including an unreadable file.
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise CatalogueError(f"{source}: cannot read the catalogue: {error}") from error
    return parse_catalogue(text, variables, source=source)


def parse_catalogue(text: str, variables: Mapping[str, str], *, source: str = "catalogue") -> Catalogue:
    """Check catalogue TOML given as text (``source`` names it in messages)."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise CatalogueError(f"{source}: not valid TOML: {error}") from error
    unknown_tables = sorted(set(document) - {"environment"})
    if unknown_tables:
        raise CatalogueError(
            f"{source}: unknown top-level key(s) {', '.join(unknown_tables)}; only [[environment]] tables are allowed"
        )
    raw_entries = document.get("environment")
    if not isinstance(raw_entries, list) or not raw_entries:
        raise CatalogueError(f"{source}: no [[environment]] entries")

    entries: list[Environment] = []
    seen_ids: set[str] = set()
    for position, raw_entry in enumerate(raw_entries, start=1):
        entry = _parse_entry(raw_entry, position, variables, source)
        if entry.id in seen_ids:
            raise CatalogueError(f"{source}: environment {entry.id!r} field id: duplicate id")
        seen_ids.add(entry.id)
        entries.append(entry)

    defaults = [entry.id for entry in entries if entry.default]
    if len(defaults) != 1:
        found = ", ".join(defaults) if defaults else "none"
        raise CatalogueError(
            f"{source}: field default: exactly one environment must have default = true; found {found}"
        )
    return Catalogue(entries)


def _parse_entry(raw_entry: object, position: int, variables: Mapping[str, str], source: str) -> Environment:
    """Check one ``[[environment]]`` table and build its :class:`Environment`."""
    label = f"{source}: environment #{position}"
    if not isinstance(raw_entry, dict):
        raise CatalogueError(f"{label}: must be a table")

    environment_id = raw_entry.get("id")
    if not isinstance(environment_id, str) or not ENVIRONMENT_ID_PATTERN.fullmatch(environment_id):
        raise CatalogueError(
            f"{label} field id: must be a string matching ^[a-z][a-z0-9-]{{0,39}}$; got {environment_id!r}"
        )
    label = f"{source}: environment {environment_id!r}"

    unknown_keys = sorted(set(raw_entry) - KNOWN_KEYS)
    if unknown_keys:
        raise CatalogueError(f"{label} field {unknown_keys[0]}: unknown key; allowed: {', '.join(sorted(KNOWN_KEYS))}")
    for key in REQUIRED_KEYS:
        if key not in raw_entry:
            raise CatalogueError(f"{label} field {key}: missing")

    name = _require_text(raw_entry, "name", label)
    description = _require_text(raw_entry, "description", label)
    kind = raw_entry["kind"]
    if kind not in KINDS:
        raise CatalogueError(f"{label} field kind: must be one of {', '.join(KINDS)}; got {kind!r}")
    gpu = _require_bool(raw_entry, "gpu", label)
    is_default = _require_bool(raw_entry, "default", label)

    location_key = LOCATION_KEY_BY_KIND[kind]
    for other_key in LOCATION_KEY_BY_KIND.values():
        if other_key != location_key and other_key in raw_entry:
            raise CatalogueError(f"{label} field {other_key}: not used by kind {kind}; give {location_key} instead")
    if location_key not in raw_entry:
        raise CatalogueError(f"{label} field {location_key}: missing (required for kind {kind})")
    template = _require_text(raw_entry, location_key, label)
    unset = sorted({name for name in _placeholder_names(template) if not variables.get(name)})
    if unset and not is_default:
        reason = (
            f"not built on this site (its catalogue_variables entry {unset[0]!r} is not set; "
            "the centre builds it from images/)"
        )
        return Environment(
            id=environment_id, name=name, description=description, kind=kind, path=None, image=None, gpu=gpu,
            default=False, unavailable_reason=reason,
        )  # fmt: skip
    location = fill_placeholders(template, variables, where=f"{label} field {location_key}")
    if unset:
        raise CatalogueError(
            f"{label} field {location_key}: the default environment must be available; "
            f"placeholder {{{unset[0]}}} is unset"
        )
    if not PurePosixPath(location).is_absolute():
        raise CatalogueError(f"{label} field {location_key}: must be an absolute path; got {location!r}")

    return Environment(
        id=environment_id,
        name=name,
        description=description,
        kind=kind,
        path=location if location_key == "path" else None,
        image=location if location_key == "image" else None,
        gpu=gpu,
        default=is_default,
    )


def _placeholder_names(template: str) -> list[str]:
    """The ``{names}`` in ``template`` (none if its brace syntax is bad: filling reports that)."""
    try:
        return [name for _, name, _, _ in string.Formatter().parse(template) if name]
    except ValueError:
        return []


def fill_placeholders(template: str, variables: Mapping[str, str], *, where: str = "value") -> str:
    """Replace each ``{name}`` in ``template`` with ``variables[name]``.

    Only bare names are allowed (no ``{0}``, ``{a.b}``, ``{a!r}`` or ``{a:>5}``);
    an unknown name raises :class:`CatalogueError` naming ``where``.
    """
    pieces: list[str] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as error:  # unbalanced braces
        raise CatalogueError(f"{where}: bad placeholder syntax in {template!r}: {error}") from error
    for literal, field_name, format_spec, conversion in parsed:
        pieces.append(literal)
        if field_name is None:
            continue
        if not PLACEHOLDER_NAME_PATTERN.fullmatch(field_name) or format_spec or conversion:
            raise CatalogueError(f"{where}: placeholders must be plain names like {{demo_venv}}; got {template!r}")
        if field_name not in variables:
            known = ", ".join(sorted(variables)) or "none"
            raise CatalogueError(f"{where}: unknown placeholder {{{field_name}}}; known: {known}")
        pieces.append(str(variables[field_name]))
    return "".join(pieces)


def _require_text(raw_entry: Mapping[str, object], key: str, label: str) -> str:
    value = raw_entry[key]
    if not isinstance(value, str) or not value.strip():
        raise CatalogueError(f"{label} field {key}: must be a non-empty string; got {value!r}")
    return value


def _require_bool(raw_entry: Mapping[str, object], key: str, label: str) -> bool:
    value = raw_entry[key]
    if not isinstance(value, bool):
        raise CatalogueError(f"{label} field {key}: must be true or false; got {value!r}")
    return value
