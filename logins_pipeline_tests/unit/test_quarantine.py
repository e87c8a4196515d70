"""The masked body of a quarantined message: an allow-list of safe fields, every other value a keyed token,
at a cost linear in the body."""

import json

import pytest

from logins_pipeline.core.quarantine import MAX_PII_VALUES, masked_body
from logins_pipeline.core.transform import MAX_BODY_BYTES, parse_body
from logins_pipeline_tests.growth import QUADRATIC_LIKE, growths
from logins_pipeline_tests.hostile import HOSTILE_BODIES
from logins_pipeline_tests.unit.test_transform import DEVICE_ID, IP, KEY, VALID, batch, only_rejection
from logins_pipeline_tests.unit.test_transform import masked_body as stored_masked_body

RENAMED = {"deviceId": "dev-renamed-77", "ip_address": "gw.example.net", "client": {"addr": "host-a", "port": 4711}}


def masked(event: dict) -> dict:
    text = masked_body(event, KEY)
    assert text is not None
    return json.loads(text)


def test_renamed_pii_fields_keep_no_plaintext():
    rejection = only_rejection(json.dumps({**VALID, "app_version": "v2", **RENAMED}))
    assert rejection.reason == "invalid_app_version"
    text = rejection.masked_body or ""
    assert [v for v in ("dev-renamed-77", "gw.example.net", "host-a", "4711", IP, DEVICE_ID) if v in text] == []
    kept = stored_masked_body(rejection)
    assert set(kept) == set(VALID) | set(RENAMED) and set(kept["client"]) == {"addr", "port"}  # keys are kept


def test_only_the_top_level_safe_fields_keep_their_text():
    event = {"user_id": "u-1", "app_version": "v2", "device_type": "ios", "locale": "de", "extra": "u-1"}
    kept = masked({**event, "nested": {"user_id": "u-1"}, "locale_2": "de"})
    assert {name: kept[name] for name in ("user_id", "app_version", "device_type", "locale")} == {
        "user_id": "u-1",
        "app_version": "v2",
        "device_type": "ios",
        "locale": "de",
    }
    assert kept["extra"] == kept["nested"]["user_id"] != "u-1"
    assert kept["locale_2"].startswith("tok:s:")


def test_a_safe_field_of_another_type_is_a_token_too():
    kept = masked({"user_id": 3232235777, "locale": {"ip_copy": IP}, "device_type": ["ios"]})
    assert kept["user_id"].startswith("tok:n:") and kept["locale"]["ip_copy"].startswith("tok:s:")
    assert kept["device_type"][0].startswith("tok:s:")


def test_value_tokens_say_the_type_and_tell_equal_values():
    kept = masked({"a": "7", "b": 7, "c": 7.5, "d": True, "e": None, "f": [7, "7"], "g": "7"})
    assert [kept[k][:6] for k in "abcd"] == ["tok:s:", "tok:n:", "tok:n:", "tok:b:"]
    assert kept["e"] is None and kept["f"] == [kept["b"], kept["a"]] and kept["a"] == kept["g"] != kept["b"]
    assert masked({"a": "7"}) == {"a": kept["a"]}  # the same value, the same token, in every message


def test_keys_are_redacted_with_the_bodys_own_values():
    kept = masked({"ip": "host-b", "seen at host-b": 1, f"via {IP}": 2})
    assert set(kept) == {"ip", "seen at [redacted]", "via [redacted]"}


def test_a_body_with_more_pii_values_than_any_login_keeps_only_size_and_hash():
    event = {"logins": [{"ip": f"10.0.0.{i}"} for i in range(MAX_PII_VALUES)]}
    assert masked_body(event, KEY) is not None
    event["logins"].append({"device_id": "one-too-many"})
    assert masked_body(event, KEY) is None
    [rejection] = batch(json.dumps(event)).rejections
    assert rejection.reason == "missing_field" and rejection.masked_body is None and rejection.body_bytes


@pytest.mark.parametrize("make_body", HOSTILE_BODIES.values(), ids=HOSTILE_BODIES.keys())
def test_each_hostile_body_is_quarantined_up_to_the_size_limit(make_body):
    text = make_body(MAX_BODY_BYTES)
    assert MAX_BODY_BYTES * 0.9 < len(text.encode()) <= MAX_BODY_BYTES
    [rejection] = batch(text).rejections
    assert rejection.reason == "missing_field" and rejection.masked_body is not None


@pytest.mark.parametrize("make_body", HOSTILE_BODIES.values(), ids=HOSTILE_BODIES.keys())
def test_quarantine_time_is_linear_up_to_the_size_limit(make_body):
    """Parsing and masking a body 8x as big must take less than QUADRATIC_LIKE x the time, up to 256 KiB, the
    largest body masked (MAX_BODY_BYTES: one over it is kept only as its size and hash, at once). Measured
    without the rest of build_batch, whose fixed cost per batch would hide how the masking grows."""
    found = growths(lambda text: masked_body(parse_body(text), KEY), make_body, [4 * 1024, 32 * 1024, MAX_BODY_BYTES])
    assert len(found) == 2 and max(found) < QUADRATIC_LIKE, found
