"""What a refused request could afford instead, and the preview's sentences (hub.ledger.offers)."""

from __future__ import annotations

import pytest

from hub.ledger import arithmetic as arith
from hub.ledger.arithmetic import MGS_PER_GPU_HOUR as H
from hub.ledger.arithmetic import Admission, Reservation
from hub.ledger.offers import (
    Offer,
    affordable_offers,
    affordable_seconds,
    cheapest_session_mgs,
    gpu_choices,
    left_now_text,
    offer_text,
    preview_summary,
    refusal_offers,
)

pytestmark = pytest.mark.unit

RATES = arith.DEFAULT_RATES
DEMO_GPU = [("h200", 4), ("a100", 4)]


@pytest.mark.parametrize(
    ("left_mgs", "gpus", "weight_milli", "most_seconds", "seconds"),
    [
        pytest.param(H // 4, 1, 1000, 3600, 900, id="quarter-hour-of-h200"),
        pytest.param(H // 4, 1, 500, 3600, 1800, id="half-hour-of-a100"),
        pytest.param(H // 4 - 1, 1, 1000, 3600, 0, id="one-mgs-short-of-a-quarter"),
        pytest.param(100 * H, 2, 1000, 8 * 3600, 8 * 3600, id="capped-at-most-seconds"),
        pytest.param(H, 4, 1000, 3600, 900, id="four-gpus-one-gpu-hour"),
        pytest.param(0, 1, 500, 3600, 0, id="nothing-left"),
        pytest.param(-H, 1, 500, 3600, 0, id="overspent"),
        pytest.param(H, 1, 1000, 600, 0, id="most-under-a-quarter"),
    ],
)
def test_affordable_seconds(left_mgs, gpus, weight_milli, most_seconds, seconds) -> None:
    assert affordable_seconds(left_mgs, gpus, weight_milli, most_seconds=most_seconds) == seconds
    assert Reservation(gpus, seconds, weight_milli).mgs <= max(left_mgs, 0)


@pytest.mark.parametrize(
    ("left_mgs", "gpus", "hours", "choices", "expected"),
    [
        pytest.param(
            H // 4, 1, 1, DEMO_GPU, ["1 x h200 for 0.25 h", "1 x a100 for 0.5 h"], id="tiny-lab-one-h200-one-hour"
        ),
        pytest.param(
            H // 4, 4, 1, DEMO_GPU, ["1 x h200 for 0.25 h", "2 x a100 for 0.25 h"], id="fewer-gpus-when-no-quarter-fits"
        ),
        pytest.param(
            3 * H, 4, 1, DEMO_GPU, ["4 x h200 for 0.75 h", "4 x a100 for 1 h"], id="cheaper-type-fits-whole-request"
        ),
        pytest.param(H // 8, 1, 1, DEMO_GPU, ["1 x a100 for 0.25 h"], id="only-the-cheaper-type"),
        pytest.param(H // 8 - 1, 1, 1, DEMO_GPU, [], id="nothing-fits"),
        pytest.param(H, 2, 1, [("a100", 4)], ["2 x a100 for 1 h"], id="request-that-fits-is-its-own-offer"),
        pytest.param(H, 1, 2, [("h200", 4), ("v100", 4)], ["1 x h200 for 1 h"], id="unpriced-type-skipped"),
    ],
)
def test_affordable_offers(left_mgs, gpus, hours, choices, expected) -> None:
    offers = affordable_offers(left_mgs, choices, gpus=gpus, reserved_seconds=int(hours * 3600), rates=RATES)
    assert [offer.text for offer in offers] == expected
    for offer in offers:  # every offer is one that admission would accept
        assert arith.reservation(offer.gpus, offer.hours, RATES.weight(offer.gpu_type)) == offer.mgs <= left_mgs


def test_offer_json_and_text() -> None:
    offer = Offer("a100", 1, 1800, 500)
    assert offer.to_json() == {"gpu_type": "a100", "gpus": 1, "hours": 0.5, "cost_gpu_hours": 0.25,
                               "text": "1 x a100 for 0.5 h"}  # fmt: skip
    assert (
        offer_text([Offer("h200", 1, 900, 1000), offer]) == "You can afford 1 x h200 for 0.25 h or 1 x a100 for 0.5 h."
    )
    assert offer_text([]) == ""


@pytest.mark.parametrize(
    ("admission", "gpus", "offers"),
    [
        pytest.param(Admission(False, "tiny-lab has 0.25 GPU-h left", H, H // 4), 1, 2, id="budget-refusal"),
        pytest.param(Admission(False, "bob's cap ...", H, 50 * H, H // 4), 1, 2, id="cap-refusal-uses-the-cap"),
        pytest.param(Admission(True, "", H, 50 * H), 1, 0, id="allowed"),
        pytest.param(Admission(False, "tiny-lab is closed.", H, 50 * H), 1, 0, id="closed-project"),
        pytest.param(Admission(False, "no", 0, -H), 0, 0, id="cpu-session"),
    ],
)
def test_refusal_offers(admission, gpus, offers) -> None:
    assert len(refusal_offers(gpus, 3600, admission, DEMO_GPU, RATES)) == offers


def test_gpu_choices_put_the_requested_type_first() -> None:
    assert gpu_choices({"a100": 4, "h200": 4, "t4": 0}, "h200") == [("h200", 4), ("a100", 4)]
    assert gpu_choices({"h200": 4, "a100": 2}, None) == [("a100", 2), ("h200", 4)]


def test_cheapest_session() -> None:
    assert cheapest_session_mgs(["h200", "a100"], RATES) == H // 8
    assert cheapest_session_mgs(["h200"], RATES) == H // 4
    assert cheapest_session_mgs(["v100"], RATES) is None


@pytest.mark.parametrize(
    ("admission", "summary", "now"),
    [
        pytest.param(
            Admission(True, "", 4 * H, 100 * H, 20 * H),
            "This reserves up to 4.0 GPU-h (4 x h200 x 1 h). vision-lab has 96.0 left; your cap has 16.0 left.",
            "Left now, before this session: vision-lab 100.0 GPU-h; your cap 20.0 GPU-h.",
            id="with-cap",
        ),
        pytest.param(
            Admission(True, "", 4 * H, 50 * H),
            "This reserves up to 4.0 GPU-h (4 x h200 x 1 h). vision-lab has 46.0 left.",
            "Left now, before this session: vision-lab 50.0 GPU-h.",
            id="without-cap",
        ),
    ],
)
def test_preview_sentences(admission, summary, now) -> None:
    assert preview_summary("vision-lab", "h200", 4, 3600, admission) == summary
    assert left_now_text("vision-lab", admission) == now
