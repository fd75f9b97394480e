"""Whole numbers from requests, paths and command lines (pure): ASCII digits only, one spelling per
number, refused naming the field, never a ValueError from ``int()`` (a 500)."""

from __future__ import annotations

import argparse
from decimal import Decimal

import pytest

from hub.numbers import NumberError, parse_whole, whole_number_argument

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "low", "high", "number"),
    [
        pytest.param("1", 1, 1_000_000, 1, id="one"),
        pytest.param("0", 0, 10, 0, id="zero-where-allowed"),
        pytest.param("1000000", 1, 1_000_000, 1_000_000, id="upper-bound"),
        pytest.param("42", 0, None, 42, id="no-upper-bound"),
    ],
)
def test_ascii_whole_numbers_are_read(text, low, high, number):
    assert parse_whole(text, "version", low=low, high=high) == number


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("²", id="superscript-two-isdigit-but-int-raises"),
        pytest.param("١", id="arabic-indic-one-int-accepts"),
        pytest.param("１", id="fullwidth-one"),
        pytest.param("-1", id="negative"),
        pytest.param("+1", id="plus-sign"),
        pytest.param("01", id="leading-zero"),
        pytest.param(" 1", id="leading-space"),
        pytest.param("1 ", id="trailing-space"),
        pytest.param("1\n", id="trailing-newline"),
        pytest.param("1_000", id="underscore-int-accepts"),
        pytest.param("1.0", id="decimal-point"),
        pytest.param("0x10", id="hex"),
        pytest.param("", id="empty"),
        pytest.param("9" * 5000, id="over-pythons-int-digit-limit"),
        pytest.param("1" * 19, id="huge"),
        pytest.param("1000001", id="above-the-range"),
        pytest.param("0", id="below-the-range"),
        pytest.param(None, id="not-a-string"),
        pytest.param(3, id="an-int-is-not-text"),
    ],
)
def test_anything_else_is_refused_naming_the_field(text, high=1_000_000):
    with pytest.raises(NumberError) as excinfo:
        parse_whole(text, "version", low=1, high=high)
    assert excinfo.value.field == "version"
    assert str(excinfo.value).startswith("version: a whole number from 1 to 1000000")
    assert len(str(excinfo.value)) < 200  # the value is cut, never echoed at length


def test_a_command_line_argument_is_refused_by_argparse():
    parser = argparse.ArgumentParser(exit_on_error=False)
    parser.add_argument("--version", type=whole_number_argument(1, 1_000_000))
    assert parser.parse_args(["--version", "3"]).version == 3
    for bad in ("١", "²", "+1", " 1", "1_0"):
        with pytest.raises(argparse.ArgumentError):
            parser.parse_args(["--version", bad])


@pytest.mark.parametrize(
    ("gpus", "ok"),
    [
        pytest.param("2", True, id="ascii"),
        pytest.param("²", False, id="superscript"),
        pytest.param("١", False, id="arabic-indic"),
        pytest.param("9" * 5000, False, id="huge"),
    ],
)
def test_the_ledger_only_preview_reads_gpus_as_ascii(gpus, ok):
    from hub.api.views import basic_spawn_request
    from hub.ledger.errors import LedgerInputError

    call = lambda: basic_spawn_request({"project": "p", "gpu_type": "h200", "gpus": gpus, "hours": 1},  # noqa: E731
                                       projects=["p"], gpu_types=["h200"], default_hours=Decimal(1))  # fmt: skip
    if ok:
        assert call()["gpus"] == 2
    else:
        with pytest.raises(LedgerInputError) as excinfo:
            call()
        assert "gpus" in str(excinfo.value.field)


@pytest.mark.parametrize(
    "value",
    [pytest.param("²", id="superscript"), pytest.param("١", id="arabic-indic"), pytest.param("9" * 5000, id="huge")],
)
def test_course_numbers_are_read_as_ascii(value):
    from hub.ledger.courses import idle_stop_minutes
    from hub.ledger.errors import LedgerInputError

    with pytest.raises(LedgerInputError) as excinfo:
        idle_stop_minutes(value)
    assert excinfo.value.field == "idle_stop_after"


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        pytest.param("1.5", True, id="ascii-decimal"),
        pytest.param(" 2 ", True, id="spaces-around-are-stripped-as-before"),
        pytest.param("-5", True, id="signed-grant"),
        pytest.param("1e3", True, id="exponent"),
        pytest.param("١.٥", False, id="arabic-indic-decimal-accepted-by-decimal"),
        pytest.param("1_0", False, id="underscore-accepted-by-decimal"),
        pytest.param("²", False, id="superscript"),
        pytest.param("9" * 5000, False, id="huge"),
    ],
)
def test_hours_and_grants_from_text_are_ascii(text, ok):
    from hub.ledger.arithmetic import to_decimal
    from hub.ledger.errors import LedgerInputError

    if ok:
        assert to_decimal(text, "hours") == Decimal(text.strip())
    else:
        with pytest.raises(LedgerInputError) as excinfo:
            to_decimal(text, "hours")
        assert excinfo.value.field == "hours"
