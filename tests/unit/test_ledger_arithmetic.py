"""Unit tests for the ledger's pure arithmetic (hub/ledger/arithmetic.py).

Figures are in weighted milli-GPU-seconds (mgs): 1 GPU-h = 3,600,000 mgs.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest

from hub.ledger.arithmetic import (
    DEFAULT_RATES,
    MGS_PER_GPU_HOUR,
    Admission,
    BudgetFigures,
    BudgetWarning,
    ChargeRates,
    Reservation,
    Rounding,
    SessionCost,
    budget_figures,
    check_admission,
    cost_so_far,
    final_charge_mgs,
    format_gpu_hours,
    gpu_hours_json,
    gpu_hours_to_mgs,
    held,
    hours_to_seconds,
    project_closed_reason,
    reservation,
    round_gpu_hours,
    slurm_job_billing,
    slurm_mirror_limit,
    warning_level,
)
from hub.ledger.errors import LedgerInputError

pytestmark = pytest.mark.unit

H = MGS_PER_GPU_HOUR  # one weighted GPU-hour


def gpu_h(text: str) -> int:
    """'3.2' GPU-hours -> mgs (exact)."""
    return int(Decimal(text) * H)


# --- reservation, cost so far, held ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("gpus", "hours", "weight", "expected_mgs"),
    [
        pytest.param(4, "1", "1.0", 4 * H, id="4xh200x1h"),
        pytest.param(1, "0.25", "0.5", gpu_h("0.125"), id="1xa100x15min"),
        pytest.param(4, 1, 0.5, 2 * H, id="4xa100x1h-int-and-float"),
        pytest.param(1, "8", "1.0", 8 * H, id="1xh200x8h"),
        pytest.param(2, 1.5, Decimal("1.0"), 3 * H, id="float-hours"),
        pytest.param(3, "0.25", "0.333", 3 * 900 * 333, id="three-decimal-weight"),
        pytest.param(0, "1", "1.0", 0, id="no-gpus"),
    ],
)
def test_reservation(gpus, hours, weight, expected_mgs: int) -> None:
    assert reservation(gpus, hours, weight) == expected_mgs


@pytest.mark.parametrize(
    ("gpus", "hours", "weight", "field", "message"),
    [
        pytest.param(1, "0", "1.0", "hours", "must be > 0", id="zero-hours"),
        pytest.param(1, "-1", "1.0", "hours", "must be > 0", id="negative-hours"),
        pytest.param(1, "0.3", "1.0", "hours", "multiple of 0.25", id="hours-not-quarter"),
        pytest.param(1, "9000", "1.0", "hours", "at most 8784", id="hours-too-long"),
        pytest.param(1, "abc", "1.0", "hours", "must be a number", id="hours-text"),
        pytest.param(1, "nan", "1.0", "hours", "finite", id="hours-nan"),
        pytest.param(1, float("inf"), "1.0", "hours", "finite", id="hours-inf"),
        pytest.param(1, True, "1.0", "hours", "must be a number", id="hours-bool"),
        pytest.param(-1, "1", "1.0", "gpus", "from 0 to 1024", id="negative-gpus"),
        pytest.param(1025, "1", "1.0", "gpus", "from 0 to 1024", id="too-many-gpus"),
        pytest.param(1.5, "1", "1.0", "gpus", "whole number", id="fractional-gpus"),
        pytest.param(True, "1", "1.0", "gpus", "whole number", id="bool-gpus"),
        pytest.param(1, "1", "0", "weight", "must be > 0", id="zero-weight"),
        pytest.param(1, "1", "0.0001", "weight", "at most 3 decimals", id="weight-too-precise"),
    ],
)
def test_reservation_rejects(gpus, hours, weight, field: str, message: str) -> None:
    with pytest.raises(LedgerInputError, match=message) as caught:
        reservation(gpus, hours, weight)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


@pytest.mark.parametrize(
    ("gpus", "elapsed_seconds", "weight", "reserved_hours", "expected_mgs"),
    [
        pytest.param(4, 1800, "1.0", "1", 2 * H, id="half-way"),
        pytest.param(4, 3600, "1.0", "1", 4 * H, id="to-the-end"),
        pytest.param(4, 7200, "1.0", "1", 4 * H, id="capped-at-reservation"),
        pytest.param(1, 0, "1.0", "1", 0, id="not-yet"),
        pytest.param(1, 1, "1.0", "1", 1_000, id="one-second-h200"),
        pytest.param(1, 7, "0.5", "0.25", 3_500, id="seven-seconds-a100"),
        pytest.param(0, 3600, "1.0", "1", 0, id="no-gpus"),
    ],
)
def test_cost_so_far(gpus, elapsed_seconds, weight, reserved_hours, expected_mgs: int) -> None:
    assert cost_so_far(gpus, elapsed_seconds, weight, reserved_hours) == expected_mgs
    booked = reservation(gpus, reserved_hours, weight)
    assert held(booked, expected_mgs) == booked - expected_mgs


@pytest.mark.parametrize(
    ("elapsed_seconds", "message"),
    [
        pytest.param(-1, "from 0 to", id="negative"),
        pytest.param(1.5, "whole seconds", id="fractional"),
        pytest.param("60", "whole seconds", id="text"),
    ],
)
def test_cost_so_far_rejects(elapsed_seconds, message: str) -> None:
    with pytest.raises(LedgerInputError, match=message) as caught:
        cost_so_far(1, elapsed_seconds, "1.0", "1")
    assert caught.value.field == "elapsed_seconds"


@pytest.mark.parametrize(
    ("reservation_mgs", "cost_mgs", "expected"),
    [
        pytest.param(4 * H, 0, 4 * H, id="pending"),
        pytest.param(4 * H, H, 3 * H, id="running"),
        pytest.param(4 * H, 4 * H, 0, id="spent"),
        pytest.param(4 * H, 5 * H, 0, id="never-negative"),
    ],
)
def test_held(reservation_mgs: int, cost_mgs: int, expected: int) -> None:
    assert held(reservation_mgs, cost_mgs) == expected


# --- exactness ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parts", "weight", "expected_mgs", "shown"),
    [
        pytest.param([1] * 3600, "1.0", H, "1.0000", id="3600-one-second-h200-charges-are-1-GPU-h"),
        pytest.param([1] * 7200, "0.5", H, "1.0000", id="7200-one-second-a100-charges-are-1-GPU-h"),
        pytest.param([7] * 3 + [1], "0.5", 11_000, "0.0031", id="odd-seconds-a100"),
    ],
)
def test_sums_of_small_costs_are_exact(parts: list[int], weight: str, expected_mgs: int, shown: str) -> None:
    """Summing many small costs never drifts (floats would: 3600 x 1/3600 != 1.0)."""
    total = sum(cost_so_far(1, seconds, weight, "8") for seconds in parts)
    assert total == expected_mgs
    assert str(round_gpu_hours(total)) == shown


@pytest.mark.parametrize(
    ("amounts", "expected_mgs"),
    [
        pytest.param(["0.1", "0.2"], gpu_h("0.3"), id="0.1+0.2-is-0.3"),
        pytest.param(["100", "-5", "0.0001"], gpu_h("95.0001"), id="signed-with-4-decimals"),
    ],
)
def test_grant_sums_are_exact(amounts: list[str], expected_mgs: int) -> None:
    assert sum(gpu_hours_to_mgs(a, "gpu_hours", allow_negative=True) for a in amounts) == expected_mgs


@pytest.mark.parametrize(
    ("value", "kwargs", "expected"),
    [
        pytest.param("100", {}, 360_000_000, id="whole"),
        pytest.param("0.25", {}, 900_000, id="quarter"),
        pytest.param("0.0001", {}, 360, id="smallest"),
        pytest.param(Decimal("3.2"), {}, 11_520_000, id="decimal"),
        pytest.param(20, {}, 72_000_000, id="int"),
        pytest.param("+5", {"allow_negative": True}, 18_000_000, id="plus-sign"),
        pytest.param("-5", {"allow_negative": True}, -18_000_000, id="signed"),
        pytest.param("0", {}, 0, id="zero-allowed"),
    ],
)
def test_gpu_hours_to_mgs(value, kwargs: dict, expected: int) -> None:
    assert gpu_hours_to_mgs(value, "gpu_hours", **kwargs) == expected


@pytest.mark.parametrize(
    ("value", "kwargs", "message"),
    [
        pytest.param("0.00001", {}, "at most 4 decimals", id="too-precise"),
        pytest.param("-5", {}, "must be >= 0", id="negative"),
        pytest.param("0", {"allow_zero": False}, "must not be 0", id="zero-refused"),
        pytest.param("1e10", {}, "at most 1000000000", id="too-big"),
        pytest.param("abc", {}, "must be a number", id="text"),
        pytest.param("NaN", {}, "finite", id="nan"),
        pytest.param(None, {}, "must be a number", id="none"),
        pytest.param(False, {}, "must be a number", id="bool"),
    ],
)
def test_gpu_hours_to_mgs_rejects(value, kwargs: dict, message: str) -> None:
    with pytest.raises(LedgerInputError, match=message) as caught:
        gpu_hours_to_mgs(value, "gpu_hours", **kwargs)
    assert caught.value.field == "gpu_hours"


@pytest.mark.parametrize(
    ("hours", "seconds"),
    [
        pytest.param("0.25", 900, id="quarter"),
        pytest.param("1.5", 5400, id="one-and-a-half"),
        pytest.param(8, 28_800, id="eight"),
    ],
)
def test_hours_to_seconds(hours, seconds: int) -> None:
    assert hours_to_seconds(hours) == seconds


# --- showing figures ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mgs", "rounding", "expected"),
    [
        pytest.param(H, Rounding.HALF_EVEN, "1.0000", id="one"),
        pytest.param(7_000, Rounding.HALF_EVEN, "0.0019", id="7s-half-even"),
        pytest.param(7_000, Rounding.FLOOR, "0.0019", id="7s-floor"),
        pytest.param(7_000, Rounding.CEILING, "0.0020", id="7s-ceiling"),
        pytest.param(180, Rounding.HALF_EVEN, "0.0000", id="tie-to-even-down"),
        pytest.param(540, Rounding.HALF_EVEN, "0.0002", id="tie-to-even-up"),
        pytest.param(180, Rounding.CEILING, "0.0001", id="tie-ceiling"),
        pytest.param(-7_000, Rounding.FLOOR, "-0.0020", id="negative-floor"),
        pytest.param(-7_000, Rounding.CEILING, "-0.0019", id="negative-ceiling"),
        pytest.param(-7_000, Rounding.HALF_EVEN, "-0.0019", id="negative-half-even"),
        pytest.param(10**15, Rounding.HALF_EVEN, "277777777.7778", id="large"),
    ],
)
def test_round_gpu_hours(mgs: int, rounding: Rounding, expected: str) -> None:
    assert str(round_gpu_hours(mgs, rounding)) == expected


@pytest.mark.parametrize(
    ("mgs", "text", "json_text"),
    [
        pytest.param(gpu_h("3.2"), "3.2", "3.2", id="3.2"),
        pytest.param(4 * H, "4.0", "4.0", id="4"),
        pytest.param(gpu_h("0.125"), "0.125", "0.125", id="eighth"),
        pytest.param(0, "0.0", "0.0", id="zero"),
        pytest.param(100 * H, "100.0", "100.0", id="hundred"),
        pytest.param(7_000, "0.0019", "0.0019", id="seven-seconds"),
        pytest.param(gpu_h("97.9333") + 120, "97.9333", "97.9333", id="four-decimals"),
    ],
)
def test_format_and_json(mgs: int, text: str, json_text: str) -> None:
    assert format_gpu_hours(mgs) == text
    assert json.dumps(gpu_hours_json(mgs)) == json_text


# --- weights and Slurm billing --------------------------------------------------------------------


def test_default_rates() -> None:
    assert DEFAULT_RATES.weight("h200") == Decimal("1.0")
    assert DEFAULT_RATES.weight("a100") == Decimal("0.5")
    assert DEFAULT_RATES.slurm_billing_weight("h200") == 2
    assert DEFAULT_RATES.slurm_billing_weight("a100") == 1
    assert DEFAULT_RATES.billing_minutes_per_gpu_hour == 120
    assert DEFAULT_RATES.tres_billing_weights() == "GRES/gpu:a100=1,GRES/gpu:h200=2"


VALID_RATES = [
    pytest.param(ChargeRates(), id="defaults"),
    pytest.param(ChargeRates({"h200": "1.0", "a100": "0.5", "l40s": "0.25"}, 4), id="quarter-weight-4-units"),
    pytest.param(ChargeRates({"h200": 1}, 1), id="one-unit"),
    pytest.param(ChargeRates({"a100": "0.5"}, 2), id="a100-only-site"),
]


@pytest.mark.parametrize("rates", VALID_RATES)
def test_no_gpu_type_is_ever_billed_zero(rates: ChargeRates) -> None:
    """Slurm skips every limit for a job billed 0: each type must bill >= 1 per GPU-minute."""
    for gpu_type in rates.gpu_types:
        assert rates.slurm_billing_weight(gpu_type) >= 1
        assert slurm_job_billing({gpu_type: 1}, rates) >= 1


@pytest.mark.parametrize(
    ("gpu_type_counts", "billing"),
    [
        pytest.param({"a100": 1}, 1, id="a100-only-course-job"),
        pytest.param({"a100": 4}, 4, id="4xa100"),
        pytest.param({"h200": 1}, 2, id="1xh200"),
        pytest.param({"h200": 2, "a100": 1}, 5, id="mixed"),
        pytest.param({}, 0, id="cpu-only"),
    ],
)
def test_slurm_job_billing(gpu_type_counts: dict, billing: int) -> None:
    assert slurm_job_billing(gpu_type_counts) == billing


@pytest.mark.parametrize(
    ("weights", "units", "field", "message"),
    [
        pytest.param({"a100": "0.25"}, 2, "weights[a100]", "0.5 is not a whole number", id="a100-quarter-billed-half"),
        pytest.param({"a100": "0.5"}, 1, "weights[a100]", "0.5 is not a whole number", id="half-with-one-unit"),
        pytest.param({"h200": "0"}, 2, "weights[h200]", "must be > 0", id="zero-weight"),
        pytest.param({"h200": "1.0"}, 0, "billing_units_per_weighted_gpu_minute", "from 1", id="zero-units"),
        pytest.param(
            {"h200": "1.0"}, 1.5, "billing_units_per_weighted_gpu_minute", "whole number", id="fractional-units"
        ),
        pytest.param({"H200": "1.0"}, 2, "weights", "a GPU type", id="unsafe-type-name"),
        pytest.param({}, 2, "weights", "at least one", id="no-types"),
    ],
)
def test_bad_rates(weights: dict, units, field: str, message: str) -> None:
    with pytest.raises(LedgerInputError, match=message) as caught:
        ChargeRates(weights, units)
    assert caught.value.field == field


def test_unknown_gpu_type_names_the_field() -> None:
    with pytest.raises(LedgerInputError, match=r"unknown GPU type 'v100' \(known: a100, h200\)") as caught:
        DEFAULT_RATES.weight("v100")
    assert caught.value.field == "gpu_type"


@pytest.mark.parametrize(
    ("elapsed_seconds", "gpu_type_counts", "expected_mgs"),
    [
        pytest.param(3600, {"h200": 2}, 2 * H, id="2xh200x1h"),
        pytest.param(1800, {"a100": 4}, H, id="4xa100x30min"),
        pytest.param(60, {"h200": 1, "a100": 2}, 120_000, id="mixed-types"),
        pytest.param(1, {"a100": 1}, 500, id="one-second-a100"),
        pytest.param(3600, {}, 0, id="cpu-only"),
    ],
)
def test_final_charge(elapsed_seconds: int, gpu_type_counts: dict, expected_mgs: int) -> None:
    assert final_charge_mgs(elapsed_seconds, gpu_type_counts) == expected_mgs


# --- budget figures and warnings ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("grants", "charges", "sessions", "used", "held_", "remaining"),
    [
        pytest.param(100 * H, 0, [], 0, 0, 100 * H, id="fresh"),
        pytest.param(100 * H, 0, [SessionCost(4 * H, 2 * H)], 2 * H, 2 * H, 96 * H, id="running-half-way"),
        pytest.param(100 * H, 10 * H, [SessionCost(4 * H)], 10 * H, 4 * H, 86 * H, id="charges-and-a-pending-hold"),
        pytest.param(
            100 * H,
            10 * H,
            [SessionCost(4 * H, H), SessionCost(8 * H, 0), SessionCost(2 * H, 2 * H)],
            13 * H,
            11 * H,
            76 * H,
            id="several-sessions",
        ),
        pytest.param(10 * H, 12 * H, [], 12 * H, 0, -2 * H, id="over-budget-after-a-cut"),
        pytest.param(
            gpu_h("0.25"), 0, [SessionCost(gpu_h("0.25"), 7_000)], 7_000, gpu_h("0.25") - 7_000, 0, id="tiny-lab-full"
        ),
    ],
)
def test_budget_figures(grants: int, charges: int, sessions: list, used: int, held_: int, remaining: int) -> None:
    figures = budget_figures(grants, charges, sessions)
    assert figures == BudgetFigures(grants, used, held_)
    assert figures.remaining_mgs == remaining


@pytest.mark.parametrize(
    ("used", "limit", "expected"),
    [
        pytest.param(0, 100 * H, BudgetWarning.NONE, id="unused"),
        pytest.param(79 * H, 100 * H, BudgetWarning.NONE, id="79%"),
        pytest.param(80 * H, 100 * H, BudgetWarning.AT_80, id="80%"),
        pytest.param(95 * H - 1, 100 * H, BudgetWarning.AT_80, id="just-under-95%"),
        pytest.param(95 * H, 100 * H, BudgetWarning.AT_95, id="95%"),
        pytest.param(100 * H - 1, 100 * H, BudgetWarning.AT_95, id="just-under-100%"),
        pytest.param(100 * H, 100 * H, BudgetWarning.EXHAUSTED, id="100%"),
        pytest.param(120 * H, 100 * H, BudgetWarning.EXHAUSTED, id="over"),
        pytest.param(gpu_h("0.2"), gpu_h("0.25"), BudgetWarning.AT_80, id="tiny-lab-80%"),
        pytest.param(16 * H, 20 * H, BudgetWarning.AT_80, id="cap-80%"),
        pytest.param(0, 0, BudgetWarning.EXHAUSTED, id="zero-cap"),
    ],
)
def test_warning_level(used: int, limit: int, expected: BudgetWarning) -> None:
    assert warning_level(used, limit) is expected


# --- admission ------------------------------------------------------------------------------------

ADVICE = "Ask for fewer GPUs or hours."


def figures_left(left: int, grants: int = 100 * H) -> BudgetFigures:
    return BudgetFigures(grants, grants - left, 0)


@pytest.mark.parametrize(
    ("kwargs", "allowed", "message"),
    [
        pytest.param({"project_figures": figures_left(4 * H)}, True, "", id="fits-exactly"),
        pytest.param(
            {"project_figures": figures_left(gpu_h("3.2"))},
            False,
            f"vision-lab has 3.2 GPU-h left; this request needs 4.0 (4 x h200 x 1 h). {ADVICE}",
            id="project-short",
        ),
        pytest.param(
            {"project_figures": figures_left(50 * H), "cap_figures": BudgetFigures(20 * H, 18 * H, 0)},
            False,
            f"bob's cap in vision-lab has 2.0 GPU-h left (cap 20.0 GPU-h); this request needs 4.0 (4 x h200 x 1 h). {ADVICE}",
            id="cap-short",
        ),
        pytest.param(
            {"project_figures": figures_left(50 * H), "cap_figures": BudgetFigures(20 * H, 10 * H, 6 * H)},
            True,
            "",
            id="cap-fits-exactly",
        ),
        pytest.param(
            {"project_figures": figures_left(3 * H), "cap_figures": BudgetFigures(20 * H, 19 * H, 0)},
            False,
            f"bob's cap in vision-lab has 1.0 GPU-h left (cap 20.0 GPU-h); this request needs 4.0 (4 x h200 x 1 h). {ADVICE}",
            id="both-short-cap-tighter",
        ),
        pytest.param(
            {"project_figures": figures_left(H), "cap_figures": BudgetFigures(20 * H, 17 * H, 0)},
            False,
            f"vision-lab has 1.0 GPU-h left; this request needs 4.0 (4 x h200 x 1 h). {ADVICE}",
            id="both-short-project-tighter",
        ),
        pytest.param(
            {"project_figures": figures_left(-2 * H)},
            False,
            f"vision-lab has 0.0 GPU-h left; this request needs 4.0 (4 x h200 x 1 h). {ADVICE}",
            id="over-budget",
        ),
        pytest.param(
            {"project_figures": figures_left(4 * H - 36)},
            False,
            f"vision-lab has 3.9999 GPU-h left; this request needs 4.0 (4 x h200 x 1 h). {ADVICE}",
            id="left-rounds-down-never-up",
        ),
        pytest.param(
            {"project_figures": figures_left(50 * H), "closed_reason": "vision-lab's period ended on 2026-06-30."},
            False,
            "vision-lab's period ended on 2026-06-30.",
            id="closed-project",
        ),
        pytest.param(
            {"project_figures": figures_left(0), "booked": Reservation(1, 3600, 1000), "what": "extension"},
            False,
            "vision-lab has 0.0 GPU-h left; this extension needs 1.0 (1 x h200 x 1 h). Ask for fewer hours.",
            id="extension",
        ),
        pytest.param(
            {"project_figures": figures_left(H), "gpu_type": "a100", "booked": Reservation(4, 3600, 500)},
            False,
            f"vision-lab has 1.0 GPU-h left; this request needs 2.0 (4 x a100 x 1 h). {ADVICE}",
            id="a100-weight",
        ),
        pytest.param(
            {"project_figures": figures_left(gpu_h("0.1")), "gpu_type": "a100", "booked": Reservation(1, 900, 500)},
            False,
            f"vision-lab has 0.1 GPU-h left; this request needs 0.125 (1 x a100 x 0.25 h). {ADVICE}",
            id="quarter-hour",
        ),
        pytest.param(
            {"project_figures": figures_left(0), "gpu_type": None, "booked": Reservation(0, 3600, 0)},
            True,
            "",
            id="cpu-session-needs-nothing",
        ),
    ],
)
def test_check_admission(kwargs: dict, allowed: bool, message: str) -> None:
    arguments = {"project": "vision-lab", "user": "bob", "gpu_type": "h200", "booked": Reservation(4, 3600, 1000)}
    arguments.update(kwargs)
    admission = check_admission(**arguments)
    assert (admission.allowed, admission.message) == (allowed, message)
    assert admission.needs_mgs == arguments["booked"].mgs
    assert admission.project_left_mgs == arguments["project_figures"].remaining_mgs


def test_admission_preview_figures() -> None:
    admission = check_admission(
        project="vision-lab", user="bob", gpu_type="h200", booked=Reservation(1, 3600, 1000),
        project_figures=figures_left(10 * H), cap_figures=BudgetFigures(20 * H, 5 * H, 0),
    )  # fmt: skip
    assert admission == Admission(True, "", H, 10 * H, 15 * H)
    assert (admission.project_left_after_mgs, admission.cap_left_after_mgs) == (9 * H, 14 * H)


@pytest.mark.parametrize(
    ("state", "state_reason", "start", "end", "today", "expected"),
    [
        pytest.param("active", None, None, None, date(2026, 3, 1), None, id="open-ended"),
        pytest.param(
            "active", None, date(2026, 1, 1), date(2026, 6, 30), date(2026, 6, 30), None, id="last-day-inclusive"
        ),
        pytest.param("active", None, date(2026, 1, 1), date(2026, 6, 30), date(2026, 1, 1), None, id="first-day"),
        pytest.param(
            "active",
            None,
            date(2026, 1, 1),
            date(2026, 6, 30),
            date(2026, 7, 1),
            "cs101's period ended on 2026-06-30.",
            id="expired",
        ),
        pytest.param(
            "active",
            None,
            date(2026, 1, 1),
            None,
            date(2025, 12, 31),
            "cs101's period starts on 2026-01-01; no sessions before then.",
            id="not-started",
        ),
        pytest.param(
            "closed", "term over", None, None, date(2026, 3, 1), "cs101 is closed: term over", id="closed-with-reason"
        ),
        pytest.param("closed", None, None, None, date(2026, 3, 1), "cs101 is closed.", id="closed"),
    ],
)
def test_project_closed_reason(state, state_reason, start, end, today, expected) -> None:
    got = project_closed_reason(
        "cs101", state=state, state_reason=state_reason, period_start=start, period_end=end, today=today
    )
    assert got == expected


# --- the Slurm mirror -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("slurm_minutes", "grants", "charges", "running", "rates", "expected"),
    [
        pytest.param(0, 100 * H, 0, 0, DEFAULT_RATES, 12_000, id="fresh-account-120-per-GPU-h"),
        # 1 x h200 x 2 h running from the portal: Slurm reserves 2 x 120 = 240 run-minutes
        pytest.param(240, 10 * H, 0, 2 * H, DEFAULT_RATES, 1_200, id="portal-job-just-started"),
        # Slurm has not refreshed its usage yet (S unchanged) while the job's cost grew:
        # the ledger subtracts the whole reservation, so L does not move either
        pytest.param(240, 10 * H, 0, 2 * H, DEFAULT_RATES, 1_200, id="between-usage-updates-before"),
        # after Slurm's usage update 30 min in: used 60 + run-remaining 180 = the same S
        pytest.param(60 + 180, 10 * H, 0, 2 * H, DEFAULT_RATES, 1_200, id="between-usage-updates-after"),
        # the job ended after 1 h and its final charge (1 GPU-h) is in: S = 120 used
        pytest.param(120, 10 * H, H, 0, DEFAULT_RATES, 1_200, id="job-ended-and-charged"),
        # an outside sbatch job, 2 x a100 with a 4 h time limit: 2 x 1 x 240 = 480 run-minutes;
        # the ledger counts it as a reservation of 2 x 4 x 0.5 = 4 GPU-h
        pytest.param(480, 10 * H, 0, 4 * H, DEFAULT_RATES, 1_200, id="outside-job-running"),
        pytest.param(480 + 240, 10 * H, 0, 4 * H + 2 * H, DEFAULT_RATES, 1_200, id="outside-and-portal-jobs"),
        # an a100-only course job, 1 x a100 x 1 h (billing 1 per minute, never 0)
        pytest.param(60, 50 * H, 0, H // 2, DEFAULT_RATES, 6_000, id="a100-only-course-job"),
        pytest.param(500, H, 2 * H, 0, DEFAULT_RATES, 500, id="overspent-never-below-S"),
        pytest.param(0, 30_000, 0, 0, DEFAULT_RATES, 1, id="half-weighted-minute-is-one-billing-minute"),
        pytest.param(0, 29_999, 0, 0, DEFAULT_RATES, 0, id="floor"),
        pytest.param(0, 10 * H, 0, 0, ChargeRates({"h200": 1}, 1), 600, id="one-unit-60-per-GPU-h"),
    ],
)
def test_slurm_mirror_limit(
    slurm_minutes: int, grants: int, charges: int, running: int, rates: ChargeRates, expected: int
) -> None:
    limit = slurm_mirror_limit(
        slurm_used_and_running_minutes=slurm_minutes, grants_mgs=grants, charges_mgs=charges,
        running_reservations_mgs=running, rates=rates,
    )  # fmt: skip
    assert limit == expected
    assert limit >= slurm_minutes


def test_mirror_without_the_outside_job_would_overspend() -> None:
    """If the ledger missed the running outside job, Slurm would allow its 4 GPU-h twice."""
    seen = slurm_mirror_limit(
        slurm_used_and_running_minutes=480, grants_mgs=10 * H, charges_mgs=0, running_reservations_mgs=4 * H
    )
    missed = slurm_mirror_limit(
        slurm_used_and_running_minutes=480, grants_mgs=10 * H, charges_mgs=0, running_reservations_mgs=0
    )
    assert seen == 1_200 == 120 * 10
    assert missed - seen == 480


@pytest.mark.parametrize(
    "bad", [pytest.param(-1, id="negative"), pytest.param(1.5, id="fractional"), pytest.param(True, id="bool")]
)
def test_slurm_mirror_rejects_bad_s(bad) -> None:
    with pytest.raises(LedgerInputError) as caught:
        slurm_mirror_limit(slurm_used_and_running_minutes=bad, grants_mgs=H, charges_mgs=0, running_reservations_mgs=0)
    assert caught.value.field == "slurm_used_and_running_minutes"
