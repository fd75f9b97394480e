"""Unit tests for spawn-option validation (spawners/slurm/options.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from spawners.slurm.cluster_parsers import parse_sinfo
from spawners.slurm.options import (
    ALLOWED_KEYS,
    OptionsError,
    drop_stale_keys,
    validate_user_options,
)
from spawners.slurm.types import ClusterInfo, JobRequest, PartitionInfo

pytestmark = pytest.mark.unit

# The demo cluster, as `sinfo --noheader --format=%P|%l|%G|%N` prints it.
DEMO_SINFO = """\
gpu*|8:00:00|gpu:h200:4|gpu[01-02]
gpu*|8:00:00|gpu:a100:4|gpu03
debug|30:00|gpu:a100:4|gpu03
cpu|4:00:00|(null)|cpu01
"""
CLUSTER = parse_sinfo(DEMO_SINFO)
CATALOGUE_IDS = ("default", "torch")


def validate(options: dict, projects: tuple[str, ...] = ("vision-lab",), **kwargs) -> JobRequest:
    return validate_user_options(
        options,
        cluster=kwargs.pop("cluster", CLUSTER),
        projects=projects,
        catalogue_ids=CATALOGUE_IDS,
        default_environment="default",
        **kwargs,
    )


def test_drop_stale_keys() -> None:
    kept, dropped = drop_stale_keys({"project": "p", "memory": "4G", "gpus": 1, "profile": "x"})
    assert kept == {"project": "p", "gpus": 1}
    assert dropped == ["memory", "profile"]


# --- validation: good inputs --------------------------------------------------------------------

GOOD = [
    pytest.param(
        {"gpu_type": "h200"}, JobRequest("vision-lab", "gpu", "h200", 1, Decimal(1), "default"), id="defaults"
    ),
    pytest.param(
        {
            "project": "vision-lab",
            "partition": "gpu",
            "gpu_type": "h200",
            "gpus": 4,
            "hours": 8,
            "environment": "torch",
        },
        JobRequest("vision-lab", "gpu", "h200", 4, Decimal(8), "torch"),
        id="full-set-max",
    ),
    pytest.param(
        {"partition": "gpu", "gpu_type": "a100", "gpus": "2", "hours": "1.5"},
        JobRequest("vision-lab", "gpu", "a100", 2, Decimal("1.5"), "default"),
        id="form-strings",
    ),
    pytest.param(
        {"partition": "debug", "gpus": 1, "hours": 0.5},
        JobRequest("vision-lab", "debug", "a100", 1, Decimal("0.5"), "default"),
        id="debug-single-type-defaulted",
    ),
    pytest.param(
        {"partition": "debug"},
        JobRequest("vision-lab", "debug", "a100", 1, Decimal("0.5"), "default"),
        id="debug-default-hours-lowered-to-maxtime",
    ),
    pytest.param(
        {"partition": "cpu", "hours": 0.25},
        JobRequest("vision-lab", "cpu", None, 0, Decimal("0.25"), "default"),
        id="cpu-no-gpus",
    ),
    pytest.param(
        {"partition": "cpu", "gpus": 0, "gpu_type": "", "hours": "4"},
        JobRequest("vision-lab", "cpu", None, 0, Decimal(4), "default"),
        id="cpu-gpus-0-empty-type",
    ),
    pytest.param(
        {"partition": "cpu", "gpus": "0", "gpu_type": None},
        JobRequest("vision-lab", "cpu", None, 0, Decimal(1), "default"),
        id="cpu-gpus-string-0-none-type",
    ),
    pytest.param(
        {"gpu_type": "h200", "hours": Decimal("2.75"), "environment": None, "project": None},
        JobRequest("vision-lab", "gpu", "h200", 1, Decimal("2.75"), "default"),
        id="none-is-absent",
    ),
    pytest.param(
        {"gpu_type": "h200", "hours": "1.50"},
        JobRequest("vision-lab", "gpu", "h200", 1, Decimal("1.5"), "default"),
        id="hours-trailing-zero",
    ),
]


@pytest.mark.parametrize(("options", "expected"), GOOD)
def test_valid_options(options: dict, expected: JobRequest) -> None:
    request = validate(options)
    assert request == expected
    assert str(request.hours) == str(expected.hours)


def test_two_projects_with_choice() -> None:
    request = validate({"project": "cs101", "gpu_type": "a100"}, projects=("vision-lab", "cs101"))
    assert request.project == "cs101"


def test_allowed_partitions_restricts_and_allows() -> None:
    allowed = {"cs101": {"debug"}, "vision-lab": {"gpu", "debug", "cpu"}}
    assert validate({"partition": "debug"}, projects=("cs101",), allowed_partitions=allowed).partition == "debug"
    assert validate({"gpu_type": "h200"}, allowed_partitions=allowed).partition == "gpu"


def test_partition_without_maxtime_is_capped_at_a_year() -> None:
    cluster = parse_sinfo("long*|infinite|gpu:h200:1|n1\n")
    assert validate({"hours": 8760}, cluster=cluster).hours == Decimal(8760)
    with pytest.raises(OptionsError, match=r"hours: .* to 8760 \(portal limit; partition long has no MaxTime\)"):
        validate({"hours": "8760.25"}, cluster=cluster)


def test_to_options_round_trips() -> None:
    request = validate({"gpu_type": "a100", "gpus": 3, "hours": 2.25, "environment": "torch"})
    assert validate(request.to_options()) == request


# --- validation: bad inputs ---------------------------------------------------------------------

SAFE_RULE = "letters, digits and . _ : -"
STRING_FIELDS = ("project", "partition", "gpu_type", "environment", "gpus", "hours")

BAD = [
    # injection attempts in every field that can be a string
    *[
        pytest.param({field: "gpu\n#SBATCH --account=other"}, field, SAFE_RULE, id=f"newline-in-{field}")
        for field in STRING_FIELDS
    ],
    pytest.param({"project": "#SBATCH --comment=x"}, "project", SAFE_RULE, id="sbatch-directive"),
    pytest.param({"partition": "--account=other"}, "partition", SAFE_RULE, id="option-injection"),
    pytest.param({"environment": "; rm -rf /"}, "environment", SAFE_RULE, id="shell-semicolon"),
    pytest.param({"gpu_type": "$(id)"}, "gpu_type", SAFE_RULE, id="command-substitution"),
    pytest.param({"project": "vision-lab "}, "project", SAFE_RULE, id="trailing-space"),
    pytest.param({"project": " vision-lab"}, "project", SAFE_RULE, id="leading-space"),
    pytest.param({"environment": "d" * 65}, "environment", "at most 64", id="too-long"),
    pytest.param({"gpus": " 2"}, "gpus", SAFE_RULE, id="gpus-leading-space"),
    pytest.param({"gpus": "2\n"}, "gpus", SAFE_RULE, id="gpus-trailing-newline"),
    # types
    pytest.param({"project": ["vision-lab"]}, "project", "must be a string", id="project-list"),
    pytest.param({"partition": 5}, "partition", "must be a string", id="partition-int"),
    pytest.param({"environment": {"id": "default"}}, "environment", "must be a string", id="environment-dict"),
    # gpus
    pytest.param(
        {"gpu_type": "h200", "gpus": 9},
        "gpus",
        r"^gpus: must be a whole number from 1 to 4 \(GPUs of type h200 per node in partition gpu\); got 9$",
        id="gpus-too-many",
    ),
    pytest.param({"gpu_type": "h200", "gpus": 0}, "gpus", "from 1 to 4", id="gpus-zero-on-gpu-partition"),
    pytest.param({"gpu_type": "h200", "gpus": -1}, "gpus", "from 1 to 4", id="gpus-negative"),
    pytest.param({"gpu_type": "h200", "gpus": 10**30}, "gpus", "from 1 to 4", id="gpus-huge"),
    pytest.param({"gpu_type": "h200", "gpus": 1.5}, "gpus", "whole number", id="gpus-float"),
    pytest.param({"gpu_type": "h200", "gpus": 1.0}, "gpus", "got 1.0", id="gpus-float-whole"),
    pytest.param({"gpu_type": "h200", "gpus": True}, "gpus", "got True", id="gpus-bool"),
    pytest.param({"gpu_type": "h200", "gpus": "2.0"}, "gpus", "whole number", id="gpus-string-float"),
    pytest.param({"gpu_type": "h200", "gpus": "-1"}, "gpus", SAFE_RULE, id="gpus-string-negative"),
    pytest.param(
        {"partition": "cpu", "gpus": 1}, "gpus", "must be 0 on partition cpu, which has no GPUs", id="cpu-with-gpus"
    ),
    pytest.param({"partition": "cpu", "gpus": False}, "gpus", "must be 0 on partition cpu", id="cpu-gpus-bool"),
    # gpu_type
    pytest.param(
        {"gpu_type": "v100"},
        "gpu_type",
        r"^gpu_type: 'v100' is not offered in partition gpu; choose one of a100, h200$",
        id="unknown-gpu-type",
    ),
    pytest.param({}, "gpu_type", "required on partition gpu; choose one of a100, h200", id="gpu-type-ambiguous"),
    pytest.param(
        {"partition": "cpu", "gpu_type": "h200"}, "gpu_type", "partition cpu has no GPUs", id="cpu-with-gpu-type"
    ),
    pytest.param(
        {"partition": "debug", "gpu_type": "h200"},
        "gpu_type",
        "not offered in partition debug; choose one of a100",
        id="h200-on-debug",
    ),
    # hours
    pytest.param({"gpu_type": "h200", "hours": 0}, "hours", "multiple of 0.25 from 0.25 to 8", id="hours-zero"),
    pytest.param({"gpu_type": "h200", "hours": -1}, "hours", "got -1", id="hours-negative"),
    pytest.param({"gpu_type": "h200", "hours": 0.3}, "hours", "multiple of 0.25", id="hours-not-quarter"),
    pytest.param(
        {"gpu_type": "h200", "hours": 8.25},
        "hours",
        r"to 8 \(MaxTime of partition gpu\); got 8.25",
        id="hours-over-gpu-maxtime",
    ),
    pytest.param(
        {"gpu_type": "h200", "hours": 9},
        "hours",
        r"^hours: must be a multiple of 0.25 from 0.25 to 8 \(MaxTime of partition gpu\); got 9$",
        id="hours-9",
    ),
    pytest.param(
        {"partition": "debug", "hours": 0.75},
        "hours",
        r"to 0.5 \(MaxTime of partition debug\)",
        id="hours-over-debug-maxtime",
    ),
    pytest.param({"gpu_type": "h200", "hours": "nan"}, "hours", "got 'nan'", id="hours-nan-string"),
    pytest.param({"gpu_type": "h200", "hours": "inf"}, "hours", "got 'inf'", id="hours-inf-string"),
    pytest.param({"gpu_type": "h200", "hours": float("nan")}, "hours", "got nan", id="hours-nan-float"),
    pytest.param({"gpu_type": "h200", "hours": float("inf")}, "hours", "got inf", id="hours-inf-float"),
    pytest.param({"gpu_type": "h200", "hours": 1e308}, "hours", "multiple of 0.25", id="hours-1e308"),
    pytest.param({"gpu_type": "h200", "hours": "1e1"}, "hours", "multiple of 0.25", id="hours-exponent-string"),
    pytest.param({"gpu_type": "h200", "hours": True}, "hours", "got True", id="hours-bool"),
    pytest.param({"gpu_type": "h200", "hours": [1]}, "hours", "multiple of 0.25", id="hours-list"),
    pytest.param(
        {"gpu_type": "h200", "hours": "1.000000000000000000000000000000001"},
        "hours",
        "multiple of 0.25",
        id="hours-tiny-excess",
    ),
    # partition
    pytest.param(
        {"partition": "gpu2"},
        "partition",
        "'gpu2' is not a partition of this cluster; choose one of cpu, debug, gpu",
        id="unknown-partition",
    ),
    # project
    pytest.param(
        {"project": "x"},
        "project",
        r"^project: 'x' is not one of your projects \(vision-lab\)$",
        id="project-not-users",
    ),
    # environment
    pytest.param(
        {"gpu_type": "h200", "environment": "tensorflow"},
        "environment",
        "not in the catalogue; choose one of default, torch",
        id="unknown-environment",
    ),
    pytest.param(
        {"gpu_type": "h200", "environment": "project:myenv"},
        "environment",
        r"'project:myenv' is not a ready environment of project vision-lab; choose one of default, torch$",
        id="project-environment-unknown",
    ),
    # keys
    pytest.param(
        {"foo": 1},
        "foo",
        r"^unknown option 'foo'; allowed: environment, gpu_type, gpus, hours, partition, project$",
        id="unknown-key",
    ),
    pytest.param(
        {"gpu_type": "h200", "memory": None}, "memory", "unknown option 'memory'", id="unknown-key-none-value"
    ),
    pytest.param({"Project": "vision-lab"}, "Project", "unknown option", id="key-case-matters"),
]


@pytest.mark.parametrize(("options", "field", "message"), BAD)
def test_invalid_options_name_the_field(options: dict, field: str, message: str) -> None:
    with pytest.raises(OptionsError, match=message) as caught:
        validate(options)
    error = caught.value
    assert error.field == field
    assert str(error) == error.message
    assert field in error.message


def test_no_projects() -> None:
    with pytest.raises(OptionsError, match="you have no project \\(Slurm account\\) to charge") as caught:
        validate({"gpu_type": "h200"}, projects=())
    assert caught.value.field == "project"


def test_two_projects_none_chosen() -> None:
    with pytest.raises(OptionsError, match="project: required .* choose one of cs101, vision-lab") as caught:
        validate({"gpu_type": "h200"}, projects=("vision-lab", "cs101"))
    assert caught.value.field == "project"


def test_partition_not_allowed_for_project() -> None:
    allowed = {"cs101": {"debug"}}
    with pytest.raises(OptionsError, match="project cs101 may not use partition gpu; choose one of debug"):
        validate({"partition": "gpu"}, projects=("cs101",), allowed_partitions=allowed)
    with pytest.raises(OptionsError, match="partition: required because project cs101 may not use the default"):
        validate({}, projects=("cs101",), allowed_partitions=allowed)
    with pytest.raises(OptionsError, match=r"choose one of \(none\)"):
        validate({"partition": "gpu"}, allowed_partitions=allowed)  # vision-lab not in the mapping


def test_cluster_without_default_partition() -> None:
    cluster = ClusterInfo(partitions={"a": PartitionInfo("a", False, 60, {"h200": 1})})
    with pytest.raises(OptionsError, match="partition: required"):
        validate({}, cluster=cluster)


def test_options_must_be_a_mapping() -> None:
    with pytest.raises(OptionsError, match="user_options: must be an object"):
        validate(["project"])  # type: ignore[arg-type]


def test_allowed_keys_constant() -> None:
    assert ALLOWED_KEYS == ("project", "partition", "gpu_type", "gpus", "hours", "environment")


def test_character_check_comes_before_other_checks() -> None:
    # project "x" is not the user's, but the unsafe environment is reported first.
    with pytest.raises(OptionsError) as caught:
        validate({"project": "x", "environment": "default\n#SBATCH --account=other"})
    assert caught.value.field == "environment"
    assert "\n" not in caught.value.message  # the value is shown escaped


# --- project environments ---------------------------------------------------------------

READY = {"vision-lab": ("tiny",), "cs101": ("course-env",)}


def test_project_environment_of_the_chosen_project_is_accepted() -> None:
    request = validate({"gpu_type": "h200", "environment": "project:tiny"}, project_environments=READY)
    assert request.environment == "project:tiny"


@pytest.mark.parametrize(
    ("options", "projects", "message"),
    [
        pytest.param(
            {"gpu_type": "h200", "environment": "project:course-env"},
            ("vision-lab",),
            r"'project:course-env' is not a ready environment of project vision-lab; "
            r"choose one of default, project:tiny, torch$",
            id="other-projects-env",
        ),
        pytest.param(
            {"gpu_type": "h200", "environment": "project:nope"},
            ("vision-lab",),
            "'project:nope' is not a ready environment",
            id="unknown-env",
        ),
        pytest.param(
            {"gpu_type": "h200", "environment": "project:"},
            ("vision-lab",),
            "is not a ready environment",
            id="empty-name",
        ),
    ],
)
def test_project_environment_refusals(options: dict, projects: tuple[str, ...], message: str) -> None:
    with pytest.raises(OptionsError, match=message) as caught:
        validate(options, projects, project_environments=READY)
    assert caught.value.field == "environment"


def test_unavailable_catalogue_entry_is_refused_with_the_reason() -> None:
    with pytest.raises(
        OptionsError,
        match=r"^environment: torch is not available: not built here; "
        r"choose one of default$",
    ):
        validate({"gpu_type": "h200", "environment": "torch"}, unavailable_environments={"torch": "not built here"})
