"""parse_body's orjson fast path for flat bodies gives exactly what the strict stdlib path gives: the same
value, or the same rejection (a repeated key above all)."""

import json
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from logins_pipeline.core import transform
from logins_pipeline.core.transform import Rejected, parse_body

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
flat_objects = st.dictionaries(st.text(max_size=8), scalars, max_size=8)


def outcome(body: str):
    try:
        return "value", parse_body(body)
    except Rejected as rejected:
        return "rejected", rejected.reason, rejected.detail


def strict_outcome(body: str):
    with mock.patch.object(transform, "_parse_flat_object", return_value=None):
        return outcome(body)


@given(flat_objects, st.booleans())
def test_flat_objects_parse_as_the_strict_parser_does(event, ascii_only):
    body = json.dumps(event, ensure_ascii=ascii_only)
    assert outcome(body) == strict_outcome(body)


@given(st.text(max_size=40) | flat_objects.map(json.dumps).map(lambda b: b[: len(b) // 2] + b[len(b) // 2 + 1 :]))
def test_any_text_gets_the_strict_parsers_outcome(body):
    assert outcome(body) == strict_outcome(body)


@pytest.mark.parametrize(
    "body",
    [
        '{"ip": "192.0.2.1", "ip": "192.0.2.2"}',
        '{"a": 1, "b": "x", "a": 2}',
        '{"a": null, "a": null}',
        '{"a": "\\u0062", "a": 1}',  # an escape: the strict path decides
        '{"n": 123456789012345678901234567890, "n": 1}',
    ],
)
def test_a_repeated_key_is_rejected(body):
    assert outcome(body)[:2] == ("rejected", transform.INVALID_JSON)


@pytest.mark.parametrize("body", ['{"a": "x"}', '{"a": 1, "b": true, "c": null, "d": "\u00e9"}'])
def test_the_fast_path_takes_the_common_body(body):
    assert transform._parse_flat_object(body) == json.loads(body)


@pytest.mark.parametrize(
    "body",
    [
        '{"a": 1.5}',
        '{"a": {"b": 1}}',
        '{"a": [1]}',
        '{"a": "\\n"}',
        "[1]",
        "1e400",
        '{"a": 123456789012345678901234567890}',
        "\ufeff{}",
    ],
)
def test_the_fast_path_leaves_the_rest_to_the_strict_parser(body):
    assert transform._parse_flat_object(body) is None
