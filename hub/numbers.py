"""Whole numbers typed by people or sent by clients: query arguments, path parts, form fields,
command-line arguments.

``str.isdigit`` is the wrong test: it accepts ``²`` (which ``int()`` then refuses with a
ValueError, a 500 in a handler) and ``١`` (which ``int()`` reads as 1); ``int()`` itself also
accepts ``" 1"``, ``"+1"`` and ``"1_000"`` and refuses more than 4300 digits. Here a number is
ASCII digits only, in one spelling (no sign, spaces, underscores or leading zeros), checked for
length before it is converted, and a refusal names the field. Pure: no framework, so the
lowest layers (the ledger, the handlers, the command line) share it.
"""

from __future__ import annotations

import argparse
import re

WHOLE_NUMBER = re.compile(r"0|[1-9][0-9]*")
MAX_DIGITS = 18  # below 2**63; longer text is refused before int() sees it
# What Decimal() may read from text: ASCII digits, an optional sign, point and exponent, or the
# words nan/inf (refused later as not finite, by name). Decimal() alone also reads '١.٥' and '1_0'.
DECIMAL_TEXT = re.compile(
    r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,6})?|[+-]?(?:nan|inf|infinity)", re.IGNORECASE
)
MAX_DECIMAL_TEXT = 64


class NumberError(ValueError):
    """Not a whole number in the range: ``field`` names it, the message says the rule."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.rule = message
        super().__init__(f"{field}: {message}")


def _range_text(low: int, high: int | None) -> str:
    return f"from {low} to {high}" if high is not None else f"from {low}"


def _shown(text: object) -> str:
    return repr(text[:20] + ("..." if len(text) > 20 else "")) if isinstance(text, str) else type(text).__name__


def parse_whole(text: object, field: str, *, low: int = 0, high: int | None = None) -> int:
    """``text`` as an int from ``low`` to ``high`` (inclusive), or :class:`NumberError` naming ``field``."""
    rule = f"a whole number {_range_text(low, high)} (ASCII digits, no sign, spaces or leading zeros)"
    if not isinstance(text, str) or len(text) > MAX_DIGITS or not WHOLE_NUMBER.fullmatch(text):
        raise NumberError(field, f"{rule}; got {_shown(text)}")
    number = int(text)
    if number < low or (high is not None and number > high):
        raise NumberError(field, f"{rule}; got {number}")
    return number


def whole_number_argument(low: int = 0, high: int | None = None):
    """An argparse ``type=`` that reads with :func:`parse_whole` (argparse names the option)."""

    def convert(text: str) -> int:
        try:
            return parse_whole(text, "value", low=low, high=high)
        except NumberError as exc:
            raise argparse.ArgumentTypeError(exc.rule) from None

    convert.__name__ = "whole number"  # argparse says "invalid whole number value" for other errors
    return convert
