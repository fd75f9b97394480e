"""OAuth codes, states and tokens never reach the hub's log (pure: the filter on a handler)."""

from __future__ import annotations

import io
import logging

import pytest

from hub.auth.log_redaction import REDACTED, install, redact

pytestmark = pytest.mark.unit

CODE = "FDS61OwhBy4cE1dFAMu5PYVqRqC8sAV2ZKyUrEzyrh6"
STATE = "eyJzdGF0ZV9pZCI6ICIwZjJjY2VkMWFlMjA0N2YxODgzZTBiOWJhNTA3NTdmMiJ9"


@pytest.mark.parametrize(
    ("message", "kept"),
    [
        pytest.param(f"403 GET /hub/oauth_callback?code={CODE}&state={STATE}&iss=http%3A%2F%2F127.0.0.1 (127.0.0.1): "
                     "Your login worked, but ...", "iss=http%3A%2F%2F127.0.0.1", id="tornado-httperror-line"),
        pytest.param(f"HTTPServerRequest(protocol='http', uri='/hub/oauth_callback?state={STATE}&code={CODE}', "
                     "version='HTTP/1.1')", "version='HTTP/1.1'", id="request-repr"),
        pytest.param("OAuth state mismatch: 0f2cced1ae2047f1883e0b9ba50757f2 != 1a2b3c", "OAuth state mismatch",
                     id="state-mismatch"),
        pytest.param(f"GET /hub/api/users?token={CODE}", "/hub/api/users", id="token-parameter"),
    ],
)  # fmt: skip
def test_secret_values_are_redacted(message, kept):
    redacted = redact(message)
    assert CODE not in redacted and STATE not in redacted and "0f2cced1ae2047f1883e0b9ba50757f2" not in redacted
    assert REDACTED in redacted and kept in redacted


def test_plain_messages_are_unchanged():
    message = "200 GET /hub/home (bob@127.0.0.1) 12.00ms"
    assert redact(message) == message


def test_the_filter_rewrites_records_of_child_loggers_before_the_handler_writes():
    stream = io.StringIO()
    parent = logging.getLogger("hpchub-test-redaction")
    handler = logging.StreamHandler(stream)
    parent.addHandler(handler)
    try:
        install(parent)
        install(parent)  # once per handler
        assert len(handler.filters) == 1
        logging.getLogger("hpchub-test-redaction.tornado").warning(
            "%d %s: %s", 403, f"GET /hub/oauth_callback?code={CODE}", "refused"
        )
    finally:
        parent.removeHandler(handler)
    assert CODE not in stream.getvalue() and "code=[secret]" in stream.getvalue()
