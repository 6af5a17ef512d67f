"""Which requests get a log line (OTPHUB_LOG_REQUESTS)."""

import pytest
from pydantic import ValidationError

from otphub.config import Settings
from otphub.http.customer_api import _logged


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, secret="s", **values)  # type: ignore[call-arg, arg-type]


def test_the_default_leaves_out_answered_status_polls_only() -> None:
    assert settings().log_requests == "except_polls"


@pytest.mark.parametrize(
    ("given", "meant"),
    [
        ("all", "all"),
        ("ALL", "all"),
        ("except_polls", "except_polls"),
        ("except-polls", "except_polls"),
        ("none", "none"),
        # The boolean of earlier versions: true was every request, false none.
        ("true", "all"),
        ("1", "all"),
        ("false", "none"),
        ("off", "none"),
        (True, "all"),
        (False, "none"),
    ],
)
def test_setting_values(given: object, meant: str) -> None:
    assert settings(log_requests=given).log_requests == meant


def test_an_unknown_value_is_refused() -> None:
    with pytest.raises(ValidationError):
        settings(log_requests="some")


@pytest.mark.parametrize(
    ("action", "answer", "except_polls"),
    [
        ("getStatus", "STATUS_WAIT_CODE", False),
        ("getStatus", "STATUS_OK", False),
        ("getStatus", "STATUS_CANCEL", False),
        ("getStatusV2", "json", False),
        ("getFullSms", "FULL_SMS", False),
        ("getFullSms", "STATUS_WAIT_CODE", False),
        # A refused poll is logged: key guessing, a client asking for ids it does not own.
        ("getStatus", "BAD_KEY", True),
        ("getStatus", "NO_ACTIVATION", True),
        ("getStatus", "WRONG_ACTIVATION_ID", True),
        ("getStatus", "ERROR_SQL", True),
        ("getStatus", "TOO_MANY_REQUESTS", True),
        # Everything else is logged, reads included.
        ("getNumber", "ACCESS_NUMBER", True),
        ("setStatus", "ACCESS_CANCEL", True),
        ("getBalance", "ACCESS_BALANCE", True),
        ("getPrices", "json", True),
        ("other", "BAD_ACTION", True),
    ],
)
def test_which_requests_are_logged(action: str, answer: str, except_polls: bool) -> None:
    assert _logged("all", action, answer) is True
    assert _logged("except_polls", action, answer) is except_polls
    assert _logged("none", action, answer) is False
