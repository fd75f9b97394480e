"""What the spawn form's preview says, and what a refused request could afford instead.

Pure: every figure comes from :mod:`.arithmetic` (integer milli-GPU-seconds, the same
:class:`~.arithmetic.Reservation` that admission holds), so an offer the preview makes is
one that admission accepts, to the quarter hour.

- :func:`affordable_seconds`: the longest session (whole quarter hours) of ``gpus`` GPUs
  of one weight that fits what is left.
- :func:`affordable_offers`: per GPU type, the request shrunk until it fits (fewer hours
  first, then fewer GPUs), e.g. ``1 x h200 for 0.25 h`` and ``1 x a100 for 0.5 h`` for
  tiny-lab's 0.25 GPU-h.
- :func:`preview_summary` / :func:`left_now_text` / :func:`offer_text`: the sentences.
- :func:`preview_json`: the preview's answer (``POST /preview`` and the form's first preview).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hub.ledger.arithmetic import (
    HOURS_STEP,
    SECONDS_PER_HOUR,
    Admission,
    ChargeRates,
    Reservation,
    Rounding,
    describe_request,
    format_gpu_hours,
    format_hours,
    gpu_hours_json,
    hours_to_seconds,
)

STEP_SECONDS = int(HOURS_STEP * SECONDS_PER_HOUR)  # 900: sessions are whole quarter hours


@dataclass(frozen=True)
class Offer:
    """A session that fits what is left: ``gpus`` x ``gpu_type`` for ``reserved_seconds``."""

    gpu_type: str
    gpus: int
    reserved_seconds: int
    weight_milli: int

    @property
    def mgs(self) -> int:
        return Reservation(self.gpus, self.reserved_seconds, self.weight_milli).mgs

    @property
    def hours(self) -> str:
        return format_hours(self.reserved_seconds)

    @property
    def text(self) -> str:
        """``1 x h200 for 0.25 h``."""
        return f"{self.gpus} x {self.gpu_type} for {self.hours} h"

    def to_json(self) -> dict:
        return {
            "gpu_type": self.gpu_type,
            "gpus": self.gpus,
            "hours": float(self.hours),
            "cost_gpu_hours": float(format_gpu_hours(self.mgs, Rounding.CEILING)),
            "text": self.text,
        }


def affordable_seconds(left_mgs: int, gpus: int, weight_milli: int, *, most_seconds: int) -> int:
    """The longest whole number of quarter hours, at most ``most_seconds``, whose reservation
    of ``gpus`` x that time x weight is <= ``left_mgs``; 0 when not even a quarter hour fits."""
    if left_mgs <= 0 or gpus <= 0 or most_seconds < STEP_SECONDS:
        return 0
    per_step = Reservation(gpus, STEP_SECONDS, weight_milli).mgs
    steps = min(left_mgs // per_step, most_seconds // STEP_SECONDS)
    return steps * STEP_SECONDS


def cheapest_session_mgs(gpu_types: Iterable[str], rates: ChargeRates) -> int | None:
    """What the smallest GPU session costs (1 GPU of the cheapest type for a quarter hour);
    None when there is no priced GPU type."""
    weights = [rates.weight_milli(t) for t in gpu_types if t in rates.weights]
    return min((Reservation(1, STEP_SECONDS, w).mgs for w in weights), default=None)


def affordable_offers(
    left_mgs: int,
    choices: Iterable[tuple[str, int]],
    *,
    gpus: int,
    reserved_seconds: int,
    rates: ChargeRates,
) -> list[Offer]:
    """For each ``(gpu_type, most GPUs per node)`` in ``choices`` (in order), the largest
    session like the request that fits ``left_mgs``: the requested GPUs (at most the node's)
    for as many quarter hours as fit, up to the requested hours; if not even a quarter hour
    fits, fewer GPUs. Types that fit nothing are left out."""
    offers: list[Offer] = []
    for gpu_type, most_gpus in choices:
        if gpu_type not in rates.weights or most_gpus <= 0:
            continue
        weight = rates.weight_milli(gpu_type)
        for count in range(min(max(gpus, 1), most_gpus), 0, -1):
            seconds = affordable_seconds(left_mgs, count, weight, most_seconds=reserved_seconds)
            if seconds:
                offers.append(Offer(gpu_type, count, seconds, weight))
                break
    return offers


def offer_text(offers: list[Offer]) -> str:
    """``You can afford 1 x h200 for 0.25 h or 1 x a100 for 0.5 h.`` ("" without offers)."""
    if not offers:
        return ""
    return "You can afford " + " or ".join(offer.text for offer in offers) + "."


def _left(mgs: int) -> str:
    return format_gpu_hours(max(0, mgs), Rounding.FLOOR)


def preview_summary(project: str, gpu_type: str | None, gpus: int, reserved_seconds: int, admission: Admission) -> str:
    """``This reserves up to 4.0 GPU-h (4 x h200 x 1 h). vision-lab has 96.0 left; your cap has
    16.0 left.``: the cost and what is left *after* the request (allowed requests)."""
    what = describe_request(gpus, gpu_type, reserved_seconds)
    text = f"This reserves up to {format_gpu_hours(admission.needs_mgs, Rounding.CEILING)} GPU-h ({what}). "
    text += f"{project} has {_left(admission.project_left_after_mgs)} left"
    if admission.cap_left_after_mgs is not None:
        text += f"; your cap has {_left(admission.cap_left_after_mgs)} left"
    return text + "."


def left_now_text(project: str, admission: Admission) -> str:
    """``Left now, before this session: vision-lab 100.0 GPU-h; your cap 20.0 GPU-h.``"""
    text = f"Left now, before this session: {project} {_left(admission.project_left_mgs)} GPU-h"
    if admission.cap_left_mgs is not None:
        text += f"; your cap {_left(admission.cap_left_mgs)} GPU-h"
    return text + "."


def spendable_mgs(admission: Admission) -> int:
    """What the request may use at most: the project's remaining, or the cap's if smaller."""
    if admission.cap_left_mgs is None:
        return admission.project_left_mgs
    return min(admission.project_left_mgs, admission.cap_left_mgs)


def gpu_choices(gpus_per_node: Mapping[str, int], requested: str | None) -> list[tuple[str, int]]:
    """A partition's GPU types (the requested one first) with their most GPUs per node."""
    present = [(t, n) for t, n in gpus_per_node.items() if n > 0]
    return sorted(present, key=lambda item: (item[0] != requested, item[0]))


def refusal_offers(
    gpus: int, reserved_seconds: int, admission: Admission, choices: Iterable[tuple[str, int]], rates: ChargeRates
) -> list[Offer]:
    """What a request refused for its budget could afford instead; none for an allowed
    request, a closed project or a session without GPUs."""
    spendable = spendable_mgs(admission)
    if admission.allowed or admission.needs_mgs <= spendable or not gpus:
        return []
    return affordable_offers(spendable, choices, gpus=gpus, reserved_seconds=reserved_seconds, rates=rates)


def _hours_or_none(mgs: int | None) -> float | None:
    return None if mgs is None else gpu_hours_json(mgs)


def preview_json(
    user: str,
    request: Mapping[str, Any],
    admission: Admission,
    offers: Sequence[Offer] = (),
) -> dict:
    """The preview's answer: what the request costs and what is left now and after it.

    ``allowed`` false with ``message`` is a budget refusal (the same words admission
    would answer with HTTP 403), not an error; ``offers`` are then what fits instead.
    ``summary`` and ``left_now`` are the form's sentences.
    """
    seconds = hours_to_seconds(request["hours"])
    summary = preview_summary(request["project"], request.get("gpu_type"), int(request["gpus"]), seconds, admission)
    return {
        "summary": summary if admission.allowed else "",
        "left_now": left_now_text(request["project"], admission),
        "offers": [offer.to_json() for offer in offers],
        "offer_text": offer_text(list(offers)),
        "project": request["project"],
        "user": user,
        "request": dict(request),
        "allowed": admission.allowed,
        "message": admission.message,
        "cost_gpu_hours": gpu_hours_json(admission.needs_mgs),
        "project_remaining_gpu_hours": gpu_hours_json(admission.project_left_mgs),
        "project_remaining_after_gpu_hours": gpu_hours_json(admission.project_left_after_mgs),
        "cap_remaining_gpu_hours": _hours_or_none(admission.cap_left_mgs),
        "cap_remaining_after_gpu_hours": _hours_or_none(admission.cap_left_after_mgs),
    }
