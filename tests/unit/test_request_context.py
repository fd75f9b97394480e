"""One RequestContext checks a user's options for the form, the preview and the spawn alike:
ready project environments, the project's Slurm account, the catalogue's unbuilt entries."""

from __future__ import annotations

from decimal import Decimal

import pytest

from hub.ledger.types import Booking
from spawners.catalog import Catalogue, Environment
from spawners.slurm.cluster_parsers import parse_sinfo
from spawners.slurm.options import OptionsError
from spawners.slurm.request_context import RequestContext, ready_names

pytestmark = pytest.mark.unit

CLUSTER = parse_sinfo("gpu*|8:00:00|gpu:h200:4|gpu01\ncpu|4:00:00|(null)|cpu01\n")
CATALOGUE = Catalogue([
    Environment("default", "Default", "JupyterLab", "venv", "/opt/x", None, True, True),
    Environment("torch", "PyTorch", "CUDA", "venv", None, None, True, False, unavailable_reason="not built here"),
])  # fmt: skip
CONTEXT = RequestContext(
    user="bob", cluster=CLUSTER, accounts={"vision-lab": "vision-acc", "tiny-lab": "tiny-lab"}, catalogue=CATALOGUE,
    project_environments=ready_names({"vision-lab": ["tiny"], "tiny-lab": []}), default_hours=Decimal(1),
)  # fmt: skip


def test_a_ready_project_environment_of_the_chosen_project_is_accepted() -> None:
    request = CONTEXT.validate({"project": "vision-lab", "environment": "project:tiny"})
    assert (request.environment, request.slurm_account, request.gpus, request.hours) == (
        "project:tiny",
        "vision-acc",
        1,
        Decimal(1),
    )


@pytest.mark.parametrize(
    ("options", "field"),
    [
        pytest.param({"project": "tiny-lab", "environment": "project:tiny"}, "environment", id="other-projects-env"),
        pytest.param({"project": "vision-lab", "environment": "project:nope"}, "environment", id="unknown-env"),
        pytest.param({"project": "vision-lab", "environment": "torch"}, "environment", id="unbuilt-entry"),
        pytest.param({"project": "vision-lab", "gpus": 5}, "gpus", id="more-gpus-than-a-node"),
        pytest.param({"project": "vision-lab"} | {"partition": "cpu", "gpus": 1}, "gpus", id="gpus-on-cpu"),
    ],
)
def test_what_the_context_refuses_names_the_field(options, field) -> None:
    with pytest.raises(OptionsError) as refused:
        CONTEXT.validate(options)
    assert refused.value.field == field


def test_the_preview_asks_the_ledger_with_one_booking() -> None:
    asked = []

    class Ledger:
        def preview(self, name, user, booking, *, lab_hours_on=None):
            asked.append((name, user, booking, lab_hours_on))
            return "admission"

    request, admission = CONTEXT.preview({"project": "vision-lab", "gpus": 2, "hours": "0.5"}, Ledger(),
                                         lab_hours_on=True)  # fmt: skip
    assert admission == "admission" and request.gpus == 2
    assert asked == [("vision-lab", "bob", Booking("h200", 2, Decimal("0.5")), True)]
