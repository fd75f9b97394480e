"""Exact GPU-hour arithmetic of the ledger (pure: no database, no clock, no framework).

Unit
----
Every quantity of budget is an **integer count of weighted milli-GPU-seconds** (variables
and columns end in ``_mgs``): one GPU of weight 1.0 for one second is 1,000 mgs, so

- 1 weighted GPU-hour  = 3,600,000 mgs (``MGS_PER_GPU_HOUR``)
- 1 weighted GPU-minute =    60,000 mgs (``MGS_PER_GPU_MINUTE``)

Why this unit: weights have at most 3 decimals (h200 1.0, a100 0.5 -> 1000 and 500
milli), elapsed seconds are whole (Slurm's ``ElapsedRaw``), hours are multiples of 0.25
(900 s), and grants and caps have at most 4 decimals of a GPU-hour (360 mgs). So every
reservation, cost, charge, grant and cap is an exact integer, sums never round, and
comparisons are exact. Rounding happens only when a figure is shown (4 decimals of a
GPU-hour, see ``round_gpu_hours``).

Contract ("Budget arithmetic" in the shared contracts):

- reservation = gpus x hours x weight; cost so far = gpus x elapsed x weight (never more
  than the reservation); held = reservation - cost so far.
- used = final charges + provisional charges (one per job: the final one replaces the
  provisional one) + running sessions' cost so far; remaining = grants - used - held.
- admission: reservation <= project remaining and <= the member's cap remaining.
- warnings at used >= 80 % and 95 % of the grants (or of a cap).
- Slurm mirror: L = S + floor(120 x (grants - charges - reservations of every job running
  on the account)), never below S; 120 = 60 x billing units per weighted GPU-minute.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from types import MappingProxyType

from hub.ledger.errors import LedgerInputError
from hub.ledger.types import check_gpu_type
from hub.numbers import DECIMAL_TEXT, MAX_DECIMAL_TEXT

MGS_PER_GPU_SECOND = 1_000
SECONDS_PER_HOUR = 3_600
MGS_PER_GPU_MINUTE = 60 * MGS_PER_GPU_SECOND
MGS_PER_GPU_HOUR = SECONDS_PER_HOUR * MGS_PER_GPU_SECOND

HOURS_STEP = Decimal("0.25")  # session hours are multiples of this (contract: spawn options)
GPU_HOURS_DECIMALS = 4  # grants and caps: at most this many decimals; figures shown with this many
WEIGHT_DECIMALS = 3  # weights: at most this many decimals (1 milli)
MAX_GPUS = 1_024
MAX_SESSION_HOURS = Decimal(8_784)  # one leap year: a sanity bound, partitions are far stricter
MAX_GPU_HOURS = Decimal(1_000_000_000)  # bound on one grant or cap (fits 64-bit columns easily)
MAX_ELAPSED_SECONDS = 10 * 366 * 24 * SECONDS_PER_HOUR
WARNING_PERCENTS = (80, 95)

DEFAULT_WEIGHTS: Mapping[str, Decimal] = MappingProxyType({"h200": Decimal("1.0"), "a100": Decimal("0.5")})
DEFAULT_BILLING_UNITS_PER_WEIGHTED_GPU_MINUTE = 2


# --- parsing numbers (exact, with errors that name the field) ---------------------------------


def to_decimal(value: object, field_name: str) -> Decimal:
    """A finite Decimal from an int, Decimal, str or float (a float by its shortest repr)."""
    if isinstance(value, bool):
        raise LedgerInputError(field_name, f"must be a number, got {value!r}")
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(repr(value))
    elif isinstance(value, str):
        text = value.strip()
        if len(text) > MAX_DECIMAL_TEXT or not DECIMAL_TEXT.fullmatch(text):
            raise LedgerInputError(field_name, f"must be a number, got {value[:40]!r}")
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise LedgerInputError(field_name, f"must be a number, got {value[:40]!r}") from None
    else:
        raise LedgerInputError(field_name, f"must be a number, got {type(value).__name__}")
    if not number.is_finite():
        raise LedgerInputError(field_name, f"must be a finite number, got {value!r}")
    return number


def _has_at_most_decimals(number: Decimal, places: int) -> bool:
    scaled = number.scaleb(places)
    return scaled == scaled.to_integral_value()


def _plain(number: Decimal) -> str:
    """``Decimal('4.50')`` -> ``'4.5'``, ``Decimal('100')`` -> ``'100'`` (never an exponent)."""
    text = format(number, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def gpu_hours_to_mgs(value: object, field_name: str, *, allow_negative: bool = False, allow_zero: bool = True) -> int:
    """A grant or cap in GPU-hours (at most 4 decimals) -> mgs."""
    number = to_decimal(value, field_name)
    if abs(number) > MAX_GPU_HOURS:
        raise LedgerInputError(field_name, f"at most {_plain(MAX_GPU_HOURS)} GPU-h, got {_plain(number)}")
    if not _has_at_most_decimals(number, GPU_HOURS_DECIMALS):
        raise LedgerInputError(field_name, f"at most {GPU_HOURS_DECIMALS} decimals of a GPU-hour, got {_plain(number)}")
    if number < 0 and not allow_negative:
        raise LedgerInputError(field_name, f"must be >= 0 GPU-h, got {_plain(number)}")
    if number == 0 and not allow_zero:
        raise LedgerInputError(field_name, "must not be 0")
    return int(number * MGS_PER_GPU_HOUR)


def hours_to_seconds(value: object, field_name: str = "hours") -> int:
    """Session hours (a positive multiple of 0.25) -> whole seconds."""
    number = to_decimal(value, field_name)
    if number <= 0:
        raise LedgerInputError(field_name, f"must be > 0 (a multiple of {HOURS_STEP}), got {_plain(number)}")
    if number > MAX_SESSION_HOURS:
        raise LedgerInputError(field_name, f"at most {_plain(MAX_SESSION_HOURS)}, got {_plain(number)}")
    if number % HOURS_STEP != 0:
        raise LedgerInputError(field_name, f"must be a multiple of {HOURS_STEP}, got {_plain(number)}")
    return int(number * SECONDS_PER_HOUR)


def weight_to_milli(value: object, field_name: str = "weight") -> int:
    """A charge weight (> 0, at most 3 decimals, e.g. 1.0 or 0.5) -> integer milli-weight."""
    number = to_decimal(value, field_name)
    if number <= 0 or number > 1_000:
        raise LedgerInputError(field_name, f"must be > 0 and <= 1000, got {_plain(number)}")
    if not _has_at_most_decimals(number, WEIGHT_DECIMALS):
        raise LedgerInputError(field_name, f"at most {WEIGHT_DECIMALS} decimals, got {_plain(number)}")
    return int(number * 1_000)


def check_gpus(value: object, field_name: str = "gpus") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise LedgerInputError(field_name, f"must be a whole number, got {value!r}")
    if not 0 <= value <= MAX_GPUS:
        raise LedgerInputError(field_name, f"must be from 0 to {MAX_GPUS}, got {value}")
    return value


def check_elapsed_seconds(value: object, field_name: str = "elapsed_seconds") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise LedgerInputError(field_name, f"must be whole seconds, got {value!r}")
    if not 0 <= value <= MAX_ELAPSED_SECONDS:
        raise LedgerInputError(field_name, f"must be from 0 to {MAX_ELAPSED_SECONDS}, got {value}")
    return value


# --- showing figures -----------------------------------------------------------------------------


class Rounding(enum.Enum):
    HALF_EVEN = "half_even"  # figures in tables and JSON
    FLOOR = "floor"  # "what is left" in a refusal: never promise more than there is
    CEILING = "ceiling"  # "what is needed" in a refusal: never understate it


def round_gpu_hours(mgs: int, rounding: Rounding = Rounding.HALF_EVEN, places: int = GPU_HOURS_DECIMALS) -> Decimal:
    """mgs -> GPU-hours as a Decimal with exactly ``places`` decimals (integer arithmetic)."""
    quotient, rest = divmod(mgs * 10**places, MGS_PER_GPU_HOUR)  # floor division, also for < 0
    if rest:
        if rounding is Rounding.CEILING:
            quotient += 1
        elif rounding is Rounding.HALF_EVEN:
            twice = 2 * rest
            if twice > MGS_PER_GPU_HOUR or (twice == MGS_PER_GPU_HOUR and quotient % 2):
                quotient += 1
    return Decimal(quotient).scaleb(-places)


def format_gpu_hours(mgs: int, rounding: Rounding = Rounding.HALF_EVEN) -> str:
    """For sentences: ``3.2``, ``4.0``, ``0.125``, ``0.0019`` (4 decimals at most, 1 at least)."""
    text = _plain(round_gpu_hours(mgs, rounding))
    return text if "." in text else f"{text}.0"


def gpu_hours_json(mgs: int) -> float:
    """A JSON number with at most 4 decimals (the float's repr is the 4-decimal figure)."""
    return float(round_gpu_hours(mgs))


def format_hours(seconds: int) -> str:
    """Session length for sentences: ``1``, ``0.25``, ``1.5``."""
    return _plain(Decimal(seconds) / SECONDS_PER_HOUR)


# --- weights and Slurm billing units -------------------------------------------------------------


@dataclass(frozen=True)
class ChargeRates:
    """Charge weights per GPU type and Slurm billing units, configured together.

    ``weights``: GPU-hours charged per GPU-hour of each type (default h200 1.0, a100 0.5).
    ``billing_units_per_weighted_gpu_minute``: Slurm billing units per weighted GPU-minute
    (default 2), so a type's Slurm ``TRESBillingWeights`` entry is weight x units. That
    product must be a whole number >= 1: Slurm stores a job's billing as an integer and
    skips every limit for a job billed 0 (an a100-only job at 0.5 x 1 would escape).
    """

    weights: Mapping[str, Decimal] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    billing_units_per_weighted_gpu_minute: int = DEFAULT_BILLING_UNITS_PER_WEIGHTED_GPU_MINUTE

    def __post_init__(self) -> None:
        units = self.billing_units_per_weighted_gpu_minute
        if isinstance(units, bool) or not isinstance(units, int) or not 1 <= units <= 1_000_000:
            raise LedgerInputError(
                "billing_units_per_weighted_gpu_minute", f"must be a whole number from 1 to 1000000, got {units!r}"
            )
        if not self.weights:
            raise LedgerInputError("weights", "at least one GPU type")
        normalized: dict[str, Decimal] = {}
        for gpu_type, weight in sorted(self.weights.items()):
            check_gpu_type(gpu_type, "weights")
            milli = weight_to_milli(weight, f"weights[{gpu_type}]")
            billing = Decimal(milli * units) / 1_000
            if billing != billing.to_integral_value():
                raise LedgerInputError(
                    f"weights[{gpu_type}]",
                    f"{_plain(Decimal(milli) / 1000)} x {units} billing units per weighted GPU-minute = "
                    f"{_plain(billing)} is not a whole number (Slurm bills whole units; a job billed 0 escapes "
                    "every limit): change the weight or the units",
                )
            normalized[gpu_type] = Decimal(milli) / 1_000
        object.__setattr__(self, "weights", MappingProxyType(normalized))

    @property
    def gpu_types(self) -> tuple[str, ...]:
        return tuple(self.weights)

    @property
    def billing_minutes_per_gpu_hour(self) -> int:
        """Slurm billing minutes per weighted GPU-hour: 120 with the defaults."""
        return 60 * self.billing_units_per_weighted_gpu_minute

    def weight(self, gpu_type: str) -> Decimal:
        try:
            return self.weights[gpu_type]
        except KeyError:
            known = ", ".join(self.gpu_types)
            raise LedgerInputError("gpu_type", f"unknown GPU type {gpu_type!r} (known: {known})") from None

    def weight_milli(self, gpu_type: str) -> int:
        return int(self.weight(gpu_type) * 1_000)

    def slurm_billing_weight(self, gpu_type: str) -> int:
        """Billing units per GPU-minute of this type (the partition's TRESBillingWeights entry)."""
        return self.weight_milli(gpu_type) * self.billing_units_per_weighted_gpu_minute // 1_000

    def tres_billing_weights(self) -> str:
        """What the GPU partitions' ``TRESBillingWeights`` must say, e.g. ``GRES/gpu:a100=1,GRES/gpu:h200=2``."""
        return ",".join(f"GRES/gpu:{t}={self.slurm_billing_weight(t)}" for t in self.gpu_types)


DEFAULT_RATES = ChargeRates()


# --- reservations, costs, holds -----------------------------------------------------------------


@dataclass(frozen=True)
class Reservation:
    """What one session reserves: ``gpus`` x ``reserved_seconds`` at ``weight_milli``/1000."""

    gpus: int
    reserved_seconds: int
    weight_milli: int

    @property
    def mgs(self) -> int:
        return self.gpus * self.reserved_seconds * self.weight_milli

    def cost_so_far_mgs(self, elapsed_seconds: int) -> int:
        """gpus x elapsed x weight, never more than the reservation (nor below 0)."""
        elapsed = max(0, elapsed_seconds)
        return min(self.gpus * elapsed * self.weight_milli, self.mgs)

    def held_mgs(self, elapsed_seconds: int) -> int:
        return self.mgs - self.cost_so_far_mgs(elapsed_seconds)


def reservation(gpus: int, hours: object, weight: object) -> int:
    """gpus x hours x weight in mgs (hours a positive multiple of 0.25)."""
    return Reservation(check_gpus(gpus), hours_to_seconds(hours), weight_to_milli(weight)).mgs


def cost_so_far(gpus: int, elapsed_seconds: int, weight: object, reserved_hours: object) -> int:
    """gpus x elapsed x weight in mgs, capped at the reservation of ``reserved_hours``."""
    booked = Reservation(check_gpus(gpus), hours_to_seconds(reserved_hours, "reserved_hours"), weight_to_milli(weight))
    return booked.cost_so_far_mgs(check_elapsed_seconds(elapsed_seconds))


def held(reservation_mgs: int, cost_so_far_mgs: int) -> int:
    """The unspent part of a reservation."""
    return max(0, reservation_mgs - cost_so_far_mgs)


def final_charge_mgs(
    elapsed_seconds: int, gpu_type_counts: Mapping[str, int], rates: ChargeRates = DEFAULT_RATES
) -> int:
    """sacct's figures: ElapsedRaw x ``gres/gpu:TYPE`` count x weight, summed over types."""
    elapsed = check_elapsed_seconds(elapsed_seconds)
    return sum(
        check_gpus(count, f"gpus[{gpu_type}]") * elapsed * rates.weight_milli(gpu_type)
        for gpu_type, count in gpu_type_counts.items()
    )


def slurm_job_billing(gpu_type_counts: Mapping[str, int], rates: ChargeRates = DEFAULT_RATES) -> int:
    """Slurm's billing of a job (units per minute): at least 1 for any job with a GPU."""
    return sum(check_gpus(count, f"gpus[{t}]") * rates.slurm_billing_weight(t) for t, count in gpu_type_counts.items())


# --- budget figures ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionCost:
    """A job that holds budget now: an admitted or running portal session, or a running
    job the portal did not start (then the reservation is gpus x time limit x weight)."""

    reservation_mgs: int
    cost_so_far_mgs: int = 0

    @property
    def held_mgs(self) -> int:
        return held(self.reservation_mgs, self.cost_so_far_mgs)


@dataclass(frozen=True)
class BudgetFigures:
    """A project's (or a member's, with ``grants_mgs`` = the cap) figures in mgs."""

    grants_mgs: int
    used_mgs: int
    held_mgs: int

    @property
    def remaining_mgs(self) -> int:
        return self.grants_mgs - self.used_mgs - self.held_mgs


def budget_figures(grants_mgs: int, charges_mgs: int, sessions: Iterable[SessionCost]) -> BudgetFigures:
    """used = charges (final, else provisional, per job) + cost so far; held = the rest of
    every reservation; remaining = grants - used - held (a property)."""
    sessions = tuple(sessions)
    return BudgetFigures(
        grants_mgs=grants_mgs,
        used_mgs=charges_mgs + sum(s.cost_so_far_mgs for s in sessions),
        held_mgs=sum(s.held_mgs for s in sessions),
    )


class BudgetWarning(enum.Enum):
    NONE = "none"
    AT_80 = "80"  # used >= 80 % of the grants (or cap)
    AT_95 = "95"
    EXHAUSTED = "100"  # used >= 100 %: running sessions stop after the grace

    @property
    def percent(self) -> int:
        return 0 if self is BudgetWarning.NONE else int(self.value)


def warning_level(used_mgs: int, limit_mgs: int) -> BudgetWarning:
    """The highest threshold reached (exact integer comparison; a zero limit is exhausted)."""
    if used_mgs * 100 >= limit_mgs * 100:
        return BudgetWarning.EXHAUSTED
    if used_mgs * 100 >= limit_mgs * WARNING_PERCENTS[1]:
        return BudgetWarning.AT_95
    if used_mgs * 100 >= limit_mgs * WARNING_PERCENTS[0]:
        return BudgetWarning.AT_80
    return BudgetWarning.NONE


# --- admission -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Admission:
    """The answer to "may this session (or extension) start?" and the preview's figures."""

    allowed: bool
    message: str  # "" when allowed; else the refusal, for the user as is
    needs_mgs: int
    project_left_mgs: int  # remaining before the request
    cap_left_mgs: int | None = None  # the member's cap remaining before; None: no cap

    @property
    def project_left_after_mgs(self) -> int:
        return self.project_left_mgs - self.needs_mgs

    @property
    def cap_left_after_mgs(self) -> int | None:
        return None if self.cap_left_mgs is None else self.cap_left_mgs - self.needs_mgs


def project_closed_reason(
    project: str,
    *,
    state: str,
    state_reason: str | None,
    period_start: date | None,
    period_end: date | None,
    today: date,
    renewal: str | None = None,
) -> str | None:
    """Why a project takes no new sessions now (closed, not started, ended), or None. An ended
    period names its end date and, with ``renewal``, where to request a renewal."""
    if state != "active":
        return f"{project} is closed" + (f": {state_reason}" if state_reason else ".")
    if period_start is not None and today < period_start:
        return f"{project}'s period starts on {period_start.isoformat()}; no sessions before then."
    if period_end is not None and today > period_end:
        text = f"{project}'s period ended on {period_end.isoformat()}."
        return f"{text} Request a renewal: {renewal}" if renewal else text
    return None


def describe_request(gpus: int, gpu_type: str | None, reserved_seconds: int) -> str:
    """``4 x h200 x 1 h`` (``0 GPUs x 1 h`` without GPUs)."""
    if gpu_type is None or gpus == 0:
        return f"0 GPUs x {format_hours(reserved_seconds)} h"
    return f"{gpus} x {gpu_type} x {format_hours(reserved_seconds)} h"


def check_admission(
    *,
    project: str,
    user: str,
    gpu_type: str | None,
    booked: Reservation,
    project_figures: BudgetFigures,
    cap_figures: BudgetFigures | None = None,
    closed_reason: str | None = None,
    what: str = "request",
) -> Admission:
    """reservation <= project remaining and <= cap remaining (when the member has a cap).

    When both fall short, the message names the one with less left (the project on a tie).
    ``what`` is ``request`` (a new session) or ``extension`` (more hours for a running one).
    """
    needs = booked.mgs
    project_left = project_figures.remaining_mgs
    cap_left = None if cap_figures is None else cap_figures.remaining_mgs
    figures = {"needs_mgs": needs, "project_left_mgs": project_left, "cap_left_mgs": cap_left}
    if closed_reason:
        return Admission(False, closed_reason, **figures)
    project_short = needs > project_left
    cap_short = cap_left is not None and needs > cap_left
    if not project_short and not cap_short:
        return Admission(True, "", **figures)
    advice = "Ask for fewer hours." if what == "extension" else "Ask for fewer GPUs or hours."
    needs_text = (
        f"this {what} needs {format_gpu_hours(needs, Rounding.CEILING)} "
        f"({describe_request(booked.gpus, gpu_type, booked.reserved_seconds)}). {advice}"
    )
    if cap_short and (not project_short or cap_left < project_left):
        assert cap_figures is not None and cap_left is not None
        left = format_gpu_hours(max(0, cap_left), Rounding.FLOOR)
        cap = format_gpu_hours(cap_figures.grants_mgs, Rounding.FLOOR)
        message = f"{user}'s cap in {project} has {left} GPU-h left (cap {cap} GPU-h); {needs_text}"
        return Admission(False, message, **figures)
    left = format_gpu_hours(max(0, project_left), Rounding.FLOOR)
    return Admission(False, f"{project} has {left} GPU-h left; {needs_text}", **figures)


# --- the Slurm mirror ----------------------------------------------------------------------------


def slurm_mirror_limit(
    *,
    slurm_used_and_running_minutes: int,
    grants_mgs: int,
    charges_mgs: int,
    running_reservations_mgs: int,
    rates: ChargeRates = DEFAULT_RATES,
) -> int:
    """``GrpTRESMins=billing=L`` for a project account (or, with a cap, a user association).

    S = Slurm's used + running-reserved billing minutes of the account read at one instant
    (``GrpTRESMins`` used + ``GrpTRESRunMins``, ``billing``). L = S + floor(units x 60 x
    (grants - charges - reservations of every job running on the account, portal or not)),
    never below S. Admitted but still pending portal sessions are not subtracted.
    """
    if isinstance(slurm_used_and_running_minutes, bool) or not isinstance(slurm_used_and_running_minutes, int):
        raise LedgerInputError("slurm_used_and_running_minutes", "must be whole billing minutes")
    if slurm_used_and_running_minutes < 0:
        raise LedgerInputError("slurm_used_and_running_minutes", f"must be >= 0, got {slurm_used_and_running_minutes}")
    room_mgs = grants_mgs - charges_mgs - running_reservations_mgs
    room_minutes = room_mgs * rates.billing_units_per_weighted_gpu_minute // MGS_PER_GPU_MINUTE  # floor
    return slurm_used_and_running_minutes + max(0, room_minutes)
