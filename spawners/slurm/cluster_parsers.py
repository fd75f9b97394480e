"""Pure parsers for what Slurm says the cluster is made of: partitions, their time limits and
GPUs (``sinfo``), node addresses (``sinfo --Node``), slurmctld's configuration (``scontrol show
config``) and the partitions' billing weights (``scontrol show partition``).

Each ``*_FORMAT`` constant here is exactly what :class:`spawners.slurm.client.SlurmClient`
asks the command for. What jobs and accounting print is read by :mod:`spawners.slurm.parsers`.

Pure module: no subprocess, no JupyterHub import.
"""

from __future__ import annotations

import re
from typing import Any

from spawners.slurm.parsers import _split, _value
from spawners.slurm.types import ClusterInfo, PartitionInfo

# sinfo --format: partition (default one with "*") | time limit | GRES | node list
SINFO_FORMAT = "%P|%l|%G|%N"
# sinfo --Node --format: node name | NodeAddr
NODE_ADDRESS_FORMAT = "%N|%o"

SLURM_UNLIMITED_WORDS = frozenset({"infinite", "unlimited"})
_TIME_PATTERN = re.compile(r"(?:(?P<days>[0-9]+)-)?(?P<clock>[0-9]+(?::[0-9]+){0,2})")


def parse_slurm_time_minutes(text: str) -> int | None:
    """Minutes in a Slurm time limit; ``None`` for ``infinite``/``UNLIMITED``.

    Accepted forms (as ``sinfo %l`` and ``scontrol`` print them): ``minutes``,
    ``minutes:seconds``, ``hours:minutes:seconds``, ``days-hours``,
    ``days-hours:minutes`` and ``days-hours:minutes:seconds``. Seconds are
    dropped (floor): Slurm's MaxTime is set in whole minutes, so a partition
    limit never has any. Raises ``ValueError`` on anything else.
    """
    word = text.strip()
    if word.lower() in SLURM_UNLIMITED_WORDS:
        return None
    match = _TIME_PATTERN.fullmatch(word)
    if match is None:
        raise ValueError(f"not a Slurm time limit: {text!r}")
    parts = [int(part) for part in match["clock"].split(":")]
    if match["days"] is not None:
        # days-hours[:minutes[:seconds]]
        days = int(match["days"])
        hours, minutes = parts[0], (parts[1] if len(parts) > 1 else 0)
        return days * 24 * 60 + hours * 60 + minutes
    if len(parts) == 3:
        hours, minutes, _seconds = parts
        return hours * 60 + minutes
    # minutes or minutes:seconds
    return parts[0]


# A comma that is not inside [...] (hostlists) or (...) (GRES socket details).
_COMMA_OUTSIDE_BRACKETS = re.compile(r",(?![^\[]*\])")
_COMMA_OUTSIDE_PARENTHESES = re.compile(r",(?![^(]*\))")
_WHOLE_NUMBER = re.compile(r"[0-9]+")


def parse_gres_gpus(text: str) -> dict[str, int]:
    """GPU type -> count from a ``sinfo %G`` value such as ``gpu:h200:4(S:0-1),shard:8``.

    Non-GPU GRES (``shard``, ``mps``) are ignored. Untyped GPUs (``gpu:4``) are
    skipped: the portal charges by GPU type and cannot price a GPU without one.
    """
    gpus: dict[str, int] = {}
    if text.strip() in ("", "(null)"):
        return gpus
    for item in filter(None, _COMMA_OUTSIDE_PARENTHESES.split(text.strip())):
        spec = item.split("(", 1)[0]  # drop "(S:0-1)" socket/index details
        fields = spec.split(":")
        if fields[0] != "gpu" or len(fields) != 3:
            continue  # not a GPU, or an untyped one ("gpu:4")
        gpu_type, count_text = fields[1], fields[2]
        if not gpu_type or not _WHOLE_NUMBER.fullmatch(count_text):
            continue
        gpus[gpu_type] = max(gpus.get(gpu_type, 0), int(count_text))
    return gpus


def parse_sinfo(text: str) -> ClusterInfo:
    """Read ``sinfo --noheader --format=%P|%l|%G|%N`` output into a :class:`ClusterInfo`.

    sinfo prints one line per partition and distinct node configuration; lines of
    one partition are merged (most GPUs of a type on any one node, all node
    lists). The default partition's name carries a trailing ``*``. Raises
    ``ValueError`` on a line that is not four ``|``-separated fields.
    """
    merged: dict[str, dict[str, Any]] = {}
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.strip().split("|")
        if len(fields) != 4:
            raise ValueError(f"sinfo line {line_number}: expected 4 fields separated by |: {line!r}")
        raw_name, time_limit, gres, hostlist = fields
        is_default = raw_name.endswith("*")
        name = raw_name.rstrip("*")
        if not name:
            raise ValueError(f"sinfo line {line_number}: empty partition name: {line!r}")
        entry = merged.setdefault(
            name,
            {"is_default": False, "max_minutes": parse_slurm_time_minutes(time_limit), "gpus": {}, "nodes": []},
        )
        entry["is_default"] = entry["is_default"] or is_default
        for gpu_type, count in parse_gres_gpus(gres).items():
            entry["gpus"][gpu_type] = max(entry["gpus"].get(gpu_type, 0), count)
        for node in filter(None, _COMMA_OUTSIDE_BRACKETS.split(hostlist.strip())):
            if node not in entry["nodes"]:
                entry["nodes"].append(node)
    return ClusterInfo(
        partitions={
            name: PartitionInfo(
                name=name,
                is_default=entry["is_default"],
                max_minutes=entry["max_minutes"],
                gpus_per_node=dict(entry["gpus"]),
                nodes=tuple(entry["nodes"]),
            )
            for name, entry in merged.items()
        }
    )


def parse_node_addresses(text: str) -> dict[str, str]:
    """Read ``sinfo --noheader --Node --format=`` :data:`NODE_ADDRESS_FORMAT` output.

    Returns node name -> NodeAddr. ``sinfo --Node`` prints a node once per
    partition; duplicates collapse. A node without an address maps to its name
    (Slurm's own default for NodeAddr).
    """
    addresses: dict[str, str] = {}
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        node, address = (field.strip() for field in _split(line, 2, "sinfo", line_number))
        if not node:
            raise ValueError(f"sinfo line {line_number}: empty node name: {line!r}")
        addresses[node] = _value(address) or node
    return addresses


# --- scontrol show (the doctor's reads) -----------------------------------------------------------


def parse_show_config(text: str) -> dict[str, str]:
    """``scontrol show config``: ``Key = value`` lines."""
    config = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() and " " not in key.strip():
            config[key.strip()] = value.strip()
    return config


def parse_partition_billing(text: str) -> dict[str, dict[str, str]]:
    """``scontrol show partition --oneliner`` -> partition -> TRESBillingWeights items."""
    partitions = {}
    for line in text.splitlines():
        fields = dict(item.split("=", 1) for item in line.split() if "=" in item)
        if "PartitionName" not in fields:
            continue
        weights = fields.get("TRESBillingWeights", "")
        items = dict(item.split("=", 1) for item in weights.split(",") if "=" in item)
        partitions[fields["PartitionName"]] = {key.lower(): value for key, value in items.items()}
    return partitions
