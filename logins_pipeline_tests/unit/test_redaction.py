"""redact() and the logging filter: PII-shaped text never survives, ordinary log text does."""

import logging
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from logins_pipeline.core.redaction import REDACTED, pii_spans, redact
from logins_pipeline.privacy.log_redaction import RedactedError, RedactionFilter, install_redaction, redacted_errors
from logins_pipeline_tests.growth import QUADRATIC_LIKE, growths
from logins_pipeline_tests.hostile import HOSTILE_TEXT

IP, DEVICE_ID = "192.0.2.135", "900-00-0135"


@pytest.mark.parametrize(
    "text",
    [
        IP,
        f"from {IP}.",
        f"ip={IP},",
        DEVICE_ID,
        f"id:{DEVICE_ID};",
        "2001:db8::1",
        "2001:DB8:0:0:0:0:0:1",
        "2001:0db8:0000:0000:0000:0000:0000:0001",
        "::ffff:1.2.3.4",
        "fe80::1%eth0",
        "::1",
        "999.1.2.3",
        "01.2.3.4",
        "abcd2001:db8::1",
        IP * 3,
        DEVICE_ID * 2,
        f"12{IP}34",
    ],
)
def test_pii_shapes_are_redacted(text):
    redacted = redact(f"before {text} after")
    assert REDACTED in redacted
    for part in ("192.0.2", "900-00", "db8", "1.2.3", "fe80"):
        assert part not in redacted


@pytest.mark.parametrize(
    "text",
    [
        "chunk 3: 5000 received, 4999 inserted (1,234 msg/s)",
        "at 12:30:45.123",
        "2026-11-25T10:00:00+00:00",
        "version 1.13.27",
        "00000000-0000-4000-8000-000000000135",
        "0" * 64,
        "lag 0.5s",
        "key a82876eeca002b45",
    ],
)
def test_ordinary_log_text_is_kept(text):
    assert redact(text) == text


@given(st.ip_addresses())
def test_every_address_is_redacted_in_any_notation(address):
    for text in {str(address), address.exploded, str(address).upper()}:
        assert text not in redact(f"x {text} y")
        assert text not in redact(f"x{text}y")


# The shape search redact() did before it was made linear (quadratic on a long run: short texts only).
SHAPE_SEARCH = re.compile(
    r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}|[0-9A-Fa-f.:]*::[0-9A-Fa-f.:]*|[0-9A-Fa-f.]*(?::[0-9A-Fa-f.]*){7,}"
    r"|[0-9]{3}-[0-9]{2}-[0-9]{4}"
)


@given(st.text(alphabet="0123456789abfABF.:-x ", max_size=60))
def test_redacts_all_the_shape_search_finds_and_leaves_no_shape(text):
    covered = {i for start, end in pii_spans(text) for i in range(start, end)}
    for found in SHAPE_SEARCH.finditer(text):
        assert set(range(*found.span())) <= covered, found
    assert SHAPE_SEARCH.search(redact(text)) is None


@pytest.mark.parametrize("unit", HOSTILE_TEXT.values(), ids=HOSTILE_TEXT.keys())
def test_redaction_time_is_linear_up_to_1_mib(unit):
    found = growths(redact, lambda size: unit * (size // len(unit)), [2 * 1024, 16 * 1024, 128 * 1024, 1024 * 1024])
    assert len(found) == 3 and max(found) < QUADRATIC_LIKE, found


def test_given_values_are_redacted_wherever_they_are():
    values = frozenset({"device-abc", " ", ""})
    assert redact("id=device-abc!", values) == f"id={REDACTED}!"
    assert redact("keep spaces", values) == "keep spaces"  # blank values are no value


def record(message, *args, exc_info=None) -> logging.LogRecord:
    return logging.LogRecord("logins_pipeline", logging.INFO, __file__, 1, message, args, exc_info)


def test_filter_redacts_message_arguments_and_exception_text():
    try:
        raise ValueError(f"bad {IP}")
    except ValueError as error:
        exc_info = (type(error), error, error.__traceback__)
    rec = record("login from %s device %s", IP, DEVICE_ID, exc_info=exc_info)
    assert RedactionFilter().filter(rec) is True
    text = logging.Formatter().format(rec)
    assert IP not in text and DEVICE_ID not in text
    assert "login from [redacted] device [redacted]" in text and "ValueError: bad [redacted]" in text


def test_filter_keeps_a_record_whose_arguments_do_not_fit():
    rec = record("%d items", "not a number")
    assert RedactionFilter().filter(rec)
    assert rec.getMessage() == "%d items"


def test_installed_once_on_package_and_dagster_loggers(caplog):
    extra = logging.getLogger("extra-test-logger")
    install_redaction(extra)
    install_redaction(extra)
    for logger in (logging.getLogger("logins_pipeline"), logging.getLogger("dagster"), extra):
        assert sum(isinstance(f, RedactionFilter) for f in logger.filters) == 1
    with caplog.at_level(logging.INFO):
        logging.getLogger("logins_pipeline").info("ip %s", IP)
    assert IP not in caplog.text and REDACTED in caplog.text


def test_redacted_errors_keeps_type_text_and_traceback_but_no_value():
    with pytest.raises(RedactedError) as caught, redacted_errors():
        raise KeyError(f"row ({IP}, {DEVICE_ID})")
    assert str(caught.value) == f"KeyError: 'row ({REDACTED}, {REDACTED})'"
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert caught.traceback[-1].name == "test_redacted_errors_keeps_type_text_and_traceback_but_no_value"
