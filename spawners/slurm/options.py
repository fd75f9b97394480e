"""Spawn options: check JupyterHub ``user_options`` by allowlist, and read Slurm's answers.

:func:`validate_user_options` turns the options a user sent (from the spawn form
or the REST API) into a :class:`JobRequest`, or raises :class:`OptionsError`
whose message names the field and the rule (the hub answers HTTP 400 with it).
Every string value is checked against a small character set *before* anything
else, so nothing that reaches the batch script can carry a newline, a space,
``#SBATCH``, ``--option=`` tricks or shell metacharacters.

What the cluster offers and which accounts a user may charge are read from Slurm's
answers by :mod:`spawners.slurm.cluster_parsers` and :mod:`spawners.slurm.parsers`.

Pure module: no subprocess, no JupyterHub import.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from spawners.slurm.types import ClusterInfo, JobRequest, PartitionInfo

ALLOWED_KEYS: tuple[str, ...] = ("project", "partition", "gpu_type", "gpus", "hours", "environment")
# Keys whose value must be a string (gpus and hours may also be numbers).
TEXT_KEYS = frozenset({"project", "partition", "gpu_type", "environment"})

MAX_VALUE_LENGTH = 64
SAFE_VALUE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")
SAFE_VALUE_RULE = (
    f"must be text of at most {MAX_VALUE_LENGTH} characters: letters, digits and . _ : - "
    "(starting with a letter or digit; no spaces)"
)
WHOLE_NUMBER_PATTERN = re.compile(r"[0-9]+")
DECIMAL_NUMBER_PATTERN = re.compile(r"[0-9]+(?:\.[0-9]+)?|\.[0-9]+")
HOURS_STEP = Decimal("0.25")
# Upper bound on hours when a partition has no MaxTime (a year), to refuse absurd values.
UNLIMITED_PARTITION_MAX_HOURS = Decimal(24 * 365)
PROJECT_ENVIRONMENT_PREFIX = "project:"


class OptionsError(ValueError):
    """A spawn option broke a rule; ``str(error)`` is the message shown to the user."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message

    def __str__(self) -> str:
        return self.message


def _shown(value: object) -> str:
    """A value as quoted in an error message: repr (escapes newlines), shortened."""
    text = repr(value)
    return text if len(text) <= 50 else text[:47] + "..."


def _choices(names: Sequence[str] | set[str]) -> str:
    return ", ".join(sorted(names)) or "(none)"


def drop_stale_keys(options: Mapping[Any, Any]) -> tuple[dict[str, Any], list[str]]:
    """Keep only the allowed keys of stored ``options``; return them and the dropped keys.

    Used when a spawn re-uses options saved under an older schema: the caller
    logs the dropped keys instead of refusing the spawn.
    """
    kept: dict[str, Any] = {}
    dropped: list[str] = []
    for key, value in options.items():
        if isinstance(key, str) and key in ALLOWED_KEYS:
            kept[key] = value
        else:
            dropped.append(str(key))
    return kept, dropped


def validate_user_options(
    options: Mapping[str, Any],
    *,
    cluster: ClusterInfo,
    projects: Sequence[str],
    catalogue_ids: Sequence[str],
    default_environment: str,
    allowed_partitions: Mapping[str, set[str]] | None = None,
    default_hours: Decimal = Decimal(1),
    default_gpus: int = 1,
    project_environments: Mapping[str, Sequence[str]] | None = None,
    unavailable_environments: Mapping[str, str] | None = None,
) -> JobRequest:
    """Check ``options`` against the allowlist and the cluster; return the job to submit.

    ``projects`` are the user's Slurm accounts. ``allowed_partitions`` (if given)
    maps a project to the partitions it may use; a project missing from it may
    use none. ``project_environments`` maps each of the user's projects to its ready
    environments (``project:NAME`` must name one of the chosen project's);
    ``unavailable_environments`` maps catalogue ids the site has not built to the reason.
    ``None`` values count as absent. A defaulted ``hours`` larger than
    the partition's MaxTime is lowered to that MaxTime (an explicit one is refused).
    Raises :class:`OptionsError` naming the field and the rule.
    """
    if not isinstance(options, Mapping):
        raise OptionsError("user_options", f"user_options: must be an object; got {type(options).__name__}")
    for key in options:
        if not isinstance(key, str) or key not in ALLOWED_KEYS:
            raise OptionsError(
                str(key)[:MAX_VALUE_LENGTH],
                f"unknown option {_shown(key)}; allowed: {', '.join(sorted(ALLOWED_KEYS))}",
            )
    present = {key: value for key, value in options.items() if value is not None}
    # An empty select in an HTML form sends "" for gpu_type: that means "none chosen".
    if present.get("gpu_type") == "":
        del present["gpu_type"]
    # Text checks come before any other: nothing unsafe gets further than this loop.
    for key in ALLOWED_KEYS:
        if key in TEXT_KEYS and key in present:
            _require_text(key, present[key])
        if isinstance(present.get(key), str):
            _check_safe_text(key, present[key])

    project = _choose_project(present.get("project"), projects)
    partition = _choose_partition(present.get("partition"), cluster, project, allowed_partitions)
    gpu_type = _choose_gpu_type(present.get("gpu_type"), partition)
    gpus = _choose_gpus(present.get("gpus"), partition, gpu_type, default_gpus)
    hours = _choose_hours(present.get("hours"), partition, default_hours)
    environment = _choose_environment(
        present.get("environment"), catalogue_ids, default_environment, project,
        project_environments or {}, unavailable_environments or {},
    )  # fmt: skip
    return JobRequest(
        project=project,
        partition=partition.name,
        gpu_type=gpu_type,
        gpus=gpus,
        hours=hours,
        environment=environment,
    )


def _invalid(field: str, rule: str) -> OptionsError:
    """An :class:`OptionsError` whose message is ``"field: rule"``."""
    return OptionsError(field, f"{field}: {rule}")


def _check_safe_text(field: str, value: str) -> None:
    if len(value) > MAX_VALUE_LENGTH or not SAFE_VALUE_PATTERN.fullmatch(value):
        raise _invalid(field, f"{SAFE_VALUE_RULE}; got {_shown(value)}")


def _require_text(field: str, value: object) -> str:
    if not isinstance(value, str):
        raise _invalid(field, f"must be a string; got {_shown(value)}")
    return value


def _choose_project(value: object, projects: Sequence[str]) -> str:
    if not projects:
        raise _invalid("project", "you have no project (Slurm account) to charge")
    if value is None:
        if len(projects) == 1:
            return projects[0]
        raise _invalid("project", f"required because you have several projects; choose one of {_choices(projects)}")
    project = _require_text("project", value)
    if project not in projects:
        raise _invalid("project", f"{_shown(project)} is not one of your projects ({_choices(projects)})")
    return project


def _choose_partition(
    value: object,
    cluster: ClusterInfo,
    project: str,
    allowed_partitions: Mapping[str, set[str]] | None,
) -> PartitionInfo:
    usable = set(cluster.partitions)
    if allowed_partitions is not None:
        usable &= set(allowed_partitions.get(project, ()))
    choose = f"choose one of {_choices(usable)}"
    if value is None:
        default = cluster.default_partition
        if default is None:
            raise _invalid("partition", f"required (the cluster has no default); {choose}")
        if default.name not in usable:
            raise _invalid(
                "partition",
                f"required because project {project} may not use the default partition {default.name}; {choose}",
            )
        return default
    name = _require_text("partition", value)
    if name not in cluster.partitions:
        raise _invalid("partition", f"{_shown(name)} is not a partition of this cluster; {choose}")
    if name not in usable:
        raise _invalid("partition", f"project {project} may not use partition {name}; {choose}")
    return cluster.partitions[name]


# --- the rules, one function each (the validation below and the spawn form's reasons use them) ---


def offered_gpu_types(partition: PartitionInfo) -> list[str]:
    """The GPU types a session may ask for on ``partition`` (those its nodes have), sorted."""
    return sorted(gpu_type for gpu_type, count in partition.gpus_per_node.items() if count > 0)


def gpu_count_range(partition: PartitionInfo, gpu_type: str | None) -> range:
    """The GPU counts a session may ask for: 0 only on a partition without GPUs, else from 1 to
    the GPUs of ``gpu_type`` one node of the partition has (with no type chosen: of any type)."""
    types = offered_gpu_types(partition)
    if not types:
        return range(0, 1)
    if gpu_type not in types:
        return range(1, max(partition.gpus_per_node[t] for t in types) + 1)
    return range(1, partition.gpus_per_node[gpu_type] + 1)


def partition_max_hours(partition: PartitionInfo) -> tuple[Decimal, str]:
    """The most hours a session may ask for on ``partition`` (a multiple of 0.25) and where that
    limit comes from: whole quarter hours within its MaxTime, or the portal's limit without one."""
    if partition.max_minutes is None:
        return UNLIMITED_PARTITION_MAX_HOURS, f"portal limit; partition {partition.name} has no MaxTime"
    # Whole quarter hours that fit into MaxTime (Slurm's MaxTime is whole minutes).
    quarters = partition.max_minutes // 15
    return Decimal(quarters) / 4, f"MaxTime of partition {partition.name}"


def environment_choices(
    catalogue_ids: Sequence[str],
    unavailable: Mapping[str, str],
    project: str,
    project_environments: Mapping[str, Sequence[str]],
) -> tuple[list[str], list[str]]:
    """(catalogue entries the site has built, ``project:NAME`` of the project's ready environments):
    the environments a session of ``project`` may start."""
    usable = [entry for entry in catalogue_ids if entry not in unavailable]
    ready = [f"{PROJECT_ENVIRONMENT_PREFIX}{name}" for name in project_environments.get(project, ())]
    return usable, ready


def _choose_gpu_type(value: object, partition: PartitionInfo) -> str | None:
    types = offered_gpu_types(partition)
    if not types:
        if value is not None:
            raise _invalid(
                "gpu_type", f"partition {partition.name} has no GPUs; leave gpu_type empty; got {_shown(value)}"
            )
        return None
    choose = f"choose one of {_choices(types)}"
    if value is None:
        if len(types) == 1:
            return types[0]
        raise _invalid("gpu_type", f"required on partition {partition.name}; {choose}")
    gpu_type = _require_text("gpu_type", value)
    if gpu_type not in types:
        raise _invalid("gpu_type", f"{_shown(gpu_type)} is not offered in partition {partition.name}; {choose}")
    return gpu_type


def _parse_whole_number(value: object) -> int | None:
    """An int, or a string of ASCII digits; anything else (bool, float, " 2") is None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and WHOLE_NUMBER_PATTERN.fullmatch(value):
        return int(value)
    return None


def _choose_gpus(value: object, partition: PartitionInfo, gpu_type: str | None, default_gpus: int) -> int:
    if gpu_type is None:
        if value is not None and _parse_whole_number(value) != 0:
            raise _invalid("gpus", f"must be 0 on partition {partition.name}, which has no GPUs; got {_shown(value)}")
        return 0
    allowed = gpu_count_range(partition, gpu_type)
    most = allowed[-1]
    candidate = default_gpus if value is None else value
    number = _parse_whole_number(candidate)
    if number is None or number not in allowed:
        raise _invalid(
            "gpus",
            f"must be a whole number from 1 to {most} (GPUs of type {gpu_type} per node "
            f"in partition {partition.name}); got {_shown(candidate)}",
        )
    return number


def _parse_hours(value: object) -> Decimal | None:
    """A finite Decimal from an int, float, Decimal or plain decimal string; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        if not DECIMAL_NUMBER_PATTERN.fullmatch(value):
            return None
        text = value
    elif isinstance(value, (int, float, Decimal)):
        text = str(value)
    else:
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _choose_hours(value: object, partition: PartitionInfo, default_hours: Decimal) -> Decimal:
    max_hours, limit_source = partition_max_hours(partition)
    if max_hours < HOURS_STEP:
        raise _invalid(
            "hours",
            f"partition {partition.name} allows less than 0.25 hours (MaxTime {partition.max_minutes} minutes); "
            "choose another partition",
        )
    rule = f"must be a multiple of 0.25 from 0.25 to {max_hours} ({limit_source})"
    if value is None:
        hours: Decimal | None = min(Decimal(default_hours), max_hours)
        shown = _shown(default_hours)
    else:
        hours, shown = _parse_hours(value), _shown(value)
    # Range first: comparisons are exact for any value, a remainder only for bounded ones.
    if hours is None or not HOURS_STEP <= hours <= max_hours or hours % HOURS_STEP != 0:
        raise _invalid("hours", f"{rule}; got {shown}")
    return Decimal(int(hours * 4)) / 4


def _choose_environment(
    value: object,
    catalogue_ids: Sequence[str],
    default_environment: str,
    project: str,
    project_environments: Mapping[str, Sequence[str]],
    unavailable: Mapping[str, str],
) -> str:
    if value is None:
        return default_environment
    environment = _require_text("environment", value)
    usable, ready = environment_choices(catalogue_ids, unavailable, project, project_environments)
    choose = f"choose one of {_choices([*usable, *ready])}"
    if environment.startswith(PROJECT_ENVIRONMENT_PREFIX):
        if environment not in ready:
            raise _invalid(
                "environment",
                f"{_shown(environment)} is not a ready environment of project {project}; {choose}",
            )
        return environment
    if environment not in catalogue_ids:
        raise _invalid("environment", f"{_shown(environment)} is not in the catalogue; {choose}")
    if environment in unavailable:
        raise _invalid("environment", f"{environment} is not available: {unavailable[environment]}; {choose}")
    return environment
