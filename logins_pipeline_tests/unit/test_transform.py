"""build_batch: every message comes out exactly once, as a validated masked row or a rejection with a reason,
and no plaintext PII survives in either."""

import dataclasses
import json
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import logins_pipeline
from logins_pipeline.core import transform
from logins_pipeline.core.app_version import encode_app_version
from logins_pipeline.core.masking import MaskingKey, canonical_ip, token
from logins_pipeline.core.messages import ReceivedMessage
from logins_pipeline.core.pii_keys import PiiKeys
from logins_pipeline.core.schema import COLUMNS, MaskedLogin
from logins_pipeline.core.transform import MAX_BODY_BYTES, Rejection, build_batch
from logins_pipeline.core.vault import VaultKey

KEY = MaskingKey.from_secret(bytes(range(32)))
SENT_MS = 1_700_000_000_000  # 2023-11-14 22:13:20 UTC
SAMPLE = Path(logins_pipeline.__file__).parent / "fixtures" / "sample_logins.json"
REASONS = {v for k, v in vars(transform).items() if k.isupper() and isinstance(v, str)}
IP, DEVICE_ID = "192.0.2.135", "900-00-0135"
VALID = {
    "user_id": "00000000-0000-4000-8000-000000000135",
    "app_version": "2.3.0",
    "device_type": "android",
    "ip": IP,
    "locale": "RU",
    "device_id": DEVICE_ID,
}
DROP = object()  # marks a field to leave out of the body


def message(body: str, sent_ms: int = SENT_MS, message_id: str | None = None) -> ReceivedMessage:
    return ReceivedMessage(message_id or str(uuid.uuid4()), "receipt", sent_ms, 1, body)


def batch(*bodies: str, sent_ms: int = SENT_MS):
    return build_batch([message(b, sent_ms) for b in bodies], PiiKeys(KEY))


def body(**changes) -> str:
    event = {**VALID, **changes}
    return json.dumps({k: v for k, v in event.items() if v is not DROP})


def only_rejection(text: str) -> Rejection:
    result = batch(text)
    assert len(result.rows) == 0, "expected a rejection, got a row"
    [rejection] = result.rejections
    return rejection


def masked_body(rejection: Rejection) -> dict:
    assert rejection.masked_body is not None, "expected a masked body"
    return json.loads(rejection.masked_body)


def rejection_text(rejection: Rejection) -> str:
    fields = (getattr(rejection, f.name) for f in dataclasses.fields(rejection))
    return repr(rejection) + "\n".join(f"{v!s}\n{v!r}" for v in fields)


def sample_events() -> list[dict]:
    return json.loads(SAMPLE.read_text())


# --- the bundled sample ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample():
    events = sample_events()
    messages = [message(json.dumps(e)) for e in events]
    return events, messages, build_batch(messages, PiiKeys(KEY))


def test_sample_rows_and_rejection(sample):
    events, messages, result = sample
    assert len(events) == 100
    assert len(result.rows) == 99
    [rejection] = result.rejections
    assert rejection.reason == transform.MISSING_FIELD
    assert json.loads(messages[[m.message_id for m in messages].index(rejection.message_id)].body) == {
        "foo": "oops_wrong_msg_type",
        "bar": "123",
    }


def test_sample_null_locales_kept(sample):
    # DESIGN.md says 30 null locales; the file has 29 explicit nulls (the 30th "null" is the invalid
    # message, which has no locale key at all).
    events, _, result = sample
    assert sum(1 for e in events if "locale" in e and e["locale"] is None) == 29
    assert result.rows["locale"].isna().sum() == 29
    assert result.rows["locale"].notna().sum() == 70


def test_sample_rows_validate(sample):
    rows = sample[2].rows
    assert list(rows.columns) == COLUMNS
    MaskedLogin.validate(rows)
    assert rows["message_id"].is_unique


def test_sample_values(sample):
    events, messages, result = sample
    by_id = {m.message_id: e for m, e in zip(messages, events, strict=True)}
    for row in result.rows.itertuples():
        event = by_id[row.message_id]
        assert row.user_id == event["user_id"]
        assert row.device_type == event["device_type"]
        assert row.app_version == encode_app_version(event["app_version"])
        assert row.masked_ip == token(KEY, "ip", event["ip"])
        assert row.masked_device_id == token(KEY, "device_id", event["device_id"])
        assert row.masking_key_id == KEY.key_id


def test_sample_pii_nowhere(sample):
    events, _, result = sample
    pii = {e[f] for e in events for f in ("ip", "device_id") if f in e}
    assert len(pii) > 150
    csv = result.rows.to_csv()
    text = "".join(rejection_text(r) for r in result.rejections)
    assert [v for v in pii if v in csv or v in text] == []


# --- dates ----------------------------------------------------------------------------------------


def ms(year: int, month: int, day: int, hour: int, minute: int, second: int, microsecond: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, second, microsecond, tzinfo=UTC).timestamp() * 1000)


@pytest.fixture
def local_timezone(monkeypatch):
    def set_zone(zone: str):
        monkeypatch.setenv("TZ", zone)
        time.tzset()

    yield set_zone
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize(
    "sent_ms, zone, expected",
    [
        (ms(2024, 3, 10, 23, 59, 59, 999_000), "UTC", date(2024, 3, 10)),
        (ms(2024, 3, 10, 23, 59, 59, 999_000), "Pacific/Kiritimati", date(2024, 3, 10)),  # local: Mar 11
        (ms(2024, 3, 11, 0, 0, 0), "America/New_York", date(2024, 3, 11)),  # local: Mar 10
        (ms(2023, 12, 31, 23, 59, 59, 999_000), "Asia/Tokyo", date(2023, 12, 31)),  # local: 2024
        (SENT_MS, "UTC", date(2023, 11, 14)),
    ],
)
def test_create_date_is_utc_date_of_sent_timestamp(local_timezone, sent_ms, zone, expected):
    local_timezone(zone)
    rows = batch(body(), sent_ms=sent_ms).rows
    assert rows["create_date"][0].date() == expected != date.today()
    assert rows["sent_at"][0] == pd.Timestamp(sent_ms, unit="ms", tz="UTC")


# --- normalisation --------------------------------------------------------------------------------


def test_valid_row_values():
    event = {
        "user_id": " u-1 ",
        "app_version": " 3.7 ",
        "device_type": " IOS ",
        "ip": " 1.2.3.4 ",
        "locale": "  ",
        "device_id": " 900-00-0135 ",
        "extra": {"ignored": True},
    }
    msg = message(json.dumps(event))
    [row] = build_batch([msg], PiiKeys(KEY)).rows.to_dict("records")
    assert row["message_id"] == msg.message_id
    assert (row["user_id"], row["device_type"], row["app_version"]) == ("u-1", "ios", 3_007_000)
    assert pd.isna(row["locale"])
    assert row["masked_ip"] == token(KEY, "ip", "1.2.3.4")
    assert row["masked_device_id"] == token(KEY, "device_id", "900-00-0135")


@pytest.mark.parametrize(
    "notations",
    [
        ["1.2.3.4", "::ffff:1.2.3.4", " 1.2.3.4", "::FFFF:0102:0304"],
        ["2001:db8::1", "2001:DB8:0:0:0:0:0:1", "2001:0db8:0000:0000:0000:0000:0000:0001"],
    ],
)
def test_equal_ips_equal_tokens(notations):
    result = batch(*(body(ip=ip) for ip in notations))
    assert result.rejections == []
    assert result.rows["masked_ip"].nunique() == 1


def test_different_ips_different_tokens():
    assert batch(body(ip="1.2.3.4"), body(ip="1.2.3.5"), body(ip="::1")).rows["masked_ip"].nunique() == 3


def test_device_id_trimmed_before_masking():
    assert batch(body(device_id=" d-1 "), body(device_id="d-1")).rows["masked_device_id"].nunique() == 1


@pytest.mark.parametrize("field, limit", [("user_id", 128), ("device_type", 32), ("locale", 32)])
def test_longest_values_accepted(field, limit):
    assert len(batch(body(**{field: "a" * limit})).rows) == 1


def test_body_of_exactly_max_bytes_accepted():
    base = body(pad="")
    text = body(pad="x" * (MAX_BODY_BYTES - len(base.encode())))
    assert len(text.encode()) == MAX_BODY_BYTES
    assert len(batch(text).rows) == 1


def test_empty_batch():
    result = build_batch([], PiiKeys(KEY))
    assert list(result.rows.columns) == COLUMNS and len(result.rows) == 0 and result.rejections == []


def test_all_rejected_batch_has_empty_valid_frame():
    result = batch("x", "[]", "{}")
    assert len(result.rows) == 0 and list(result.rows.columns) == COLUMNS
    assert result.reasons() == {"invalid_json": 1, "not_an_object": 1, "missing_field": 1}


# --- reasons --------------------------------------------------------------------------------------

REASON_CASES = [
    ("empty_value", body(user_id="")),
    ("empty_value", body(device_type="  ")),
    ("body_too_large", body(pad="x" * MAX_BODY_BYTES)),
    ("body_too_large", json.dumps({**VALID, "pad": "é" * (MAX_BODY_BYTES // 2 + 1)}, ensure_ascii=False)),
    ("invalid_json", ""),
    ("invalid_json", "   "),
    ("invalid_json", "{"),
    ("invalid_json", body()[:-1]),
    ("invalid_json", "{'user_id': 'u'}"),
    ("invalid_json", body()[:-1] + ', "score": NaN}'),
    ("invalid_json", body()[:-1] + ', "score": Infinity}'),
    ("invalid_json", body()[:-1] + ', "score": -Infinity}'),
    ("invalid_json", body()[:-1] + f', "ip": "{IP}"}}'),  # duplicate key
    ("invalid_json", body()[:-1] + ', "x": {"a": 1, "a": 2}}'),  # duplicate key, nested
    ("invalid_json", "\ud800"),  # a lone surrogate: not text any encoder could send
    ("invalid_json", "\xff\xfe{}"),  # UTF-16 byte-order mark mis-decoded as Latin-1
    ("invalid_json", "\x00"),
    ("invalid_json", body() + " trailing"),
    ("not_an_object", "[]"),
    ("not_an_object", f"[{body()}]"),
    ("not_an_object", "1"),
    ("not_an_object", '"text"'),
    ("not_an_object", "null"),
    ("not_an_object", "true"),
    ("missing_field", "{}"),
    ("missing_field", '{"foo": "oops_wrong_msg_type", "bar": "123"}'),
    *[("missing_field", body(**{f: DROP})) for f in transform.REQUIRED_TEXT_FIELDS],
    *[("missing_field", body(**{f: None})) for f in transform.REQUIRED_TEXT_FIELDS],
    ("missing_field", body(IP=IP, ip=DROP)),  # field names are case-sensitive
    ("wrong_type", body(user_id=123)),
    ("wrong_type", body(app_version=1.2)),
    ("wrong_type", body(app_version=3)),
    ("wrong_type", body(device_type=["ios"])),
    ("wrong_type", body(ip=16909060)),
    ("wrong_type", body(ip=True)),
    ("wrong_type", body(device_id=593475928)),
    ("wrong_type", body(device_id={"id": DEVICE_ID})),
    ("wrong_type", body(locale=5)),
    ("wrong_type", body(locale=False)),
    ("wrong_type", body(locale=["RU"])),
    ("invalid_ip", body(ip="256.1.1.1")),
    ("invalid_ip", body(ip="01.2.3.4")),
    ("invalid_ip", body(ip="")),
    ("invalid_ip", body(ip="example.com")),
    ("invalid_ip", body(ip="1.2.3")),
    ("invalid_ip", body(ip="1.2.3.4\x00")),
    ("invalid_device_id", body(device_id="")),
    ("invalid_device_id", body(device_id="  \t\n")),
    ("invalid_app_version", body(app_version="v1.2")),
    ("invalid_app_version", body(app_version="1.2.3.4")),
    ("invalid_app_version", body(app_version="1.2.3-beta")),
    ("invalid_app_version", body(app_version="2148.0.0")),
    ("invalid_app_version", body(app_version="")),
    ("value_too_long", body(user_id="u" * 129)),
    ("value_too_long", body(device_type="d" * 33)),
    ("value_too_long", body(locale="l" * 33)),
    ("schema_violation", body(user_id="a\x00b")),
    ("schema_violation", body(user_id="a\nb")),
    ("schema_violation", body(user_id="a\x7fb")),
    ("schema_violation", body(device_type="i\tos")),
    ("schema_violation", body(locale="R\x00U")),
    ("schema_violation", body(locale="R\x1bU")),
]


@pytest.mark.parametrize("reason, text", REASON_CASES)
def test_reason(reason, text):
    rejection = only_rejection(text)
    assert rejection.reason == reason, rejection.detail
    assert rejection.detail
    leaked = rejection_text(rejection)
    assert IP not in leaked and DEVICE_ID not in leaked


def test_every_reason_covered():
    # `expired` is the message's date, not its body: test_expiry.py
    assert {reason for reason, _ in REASON_CASES} | {"expired"} == REASONS
    assert len(REASONS) == 12


def test_bad_message_does_not_stop_others():
    result = batch(body(), "not json", body(user_id="a\x00b"), body(), body(ip="nope"), body(locale="x" * 40))
    assert len(result.rows) == 2
    assert result.reasons() == {"invalid_json": 1, "schema_violation": 1, "invalid_ip": 1, "value_too_long": 1}


@pytest.mark.parametrize("ip", ["example.com", "10.0.0.256", "2001:db8::g"])
def test_invalid_ip_not_quoted(ip):
    rejection = only_rejection(body(ip=ip))
    assert ip not in rejection_text(rejection)
    assert masked_body(rejection)["ip"] == token(KEY, "ip", ip)


# --- rejection contents ---------------------------------------------------------------------------


def test_rejection_metadata():
    msg = ReceivedMessage("m-1", "receipt", SENT_MS, 4, "nope")
    [rejection] = build_batch([msg], PiiKeys(KEY)).rejections
    assert rejection.message_id == "m-1"
    assert rejection.receive_count == 4
    assert rejection.sent_at == datetime.fromtimestamp(SENT_MS / 1000, UTC)
    assert rejection.masking_key_id == KEY.key_id


def test_masked_body_masks_pii_at_any_depth_any_case():
    event = {
        "IP": " 1.2.3.4 ",
        "Device_ID": f" {DEVICE_ID} ",
        "user_id": "u",
        "outer": {"ip": "::ffff:1.2.3.4", "list": [{"dEvIcE_iD": "x-y-z"}, {"iP": {"v": "9.8.7.6"}}]},
    }
    rejection = only_rejection(json.dumps(event))
    assert rejection.reason == "missing_field"
    masked = masked_body(rejection)
    assert masked["IP"] == masked["outer"]["ip"] == token(KEY, "ip", "1.2.3.4")
    assert masked["Device_ID"] == token(KEY, "device_id", DEVICE_ID)
    assert masked["outer"]["list"][0]["dEvIcE_iD"] == token(KEY, "device_id", "x-y-z")
    assert masked["outer"]["list"][1]["iP"] == token(KEY, "ip", json.dumps({"v": "9.8.7.6"}))
    assert masked["user_id"] == "u"
    for value in ("1.2.3.4", DEVICE_ID, "x-y-z", "9.8.7.6"):
        assert value not in rejection_text(rejection)


def test_masked_body_of_valid_fields_rejected_later():
    rejection = only_rejection(body(user_id="a\x00b"))
    masked = masked_body(rejection)
    assert masked["ip"] == token(KEY, "ip", IP)
    assert masked["device_id"] == token(KEY, "device_id", DEVICE_ID)
    assert masked["user_id"] == "a\x00b"


@pytest.mark.parametrize("text", [f'["{IP}", "{DEVICE_ID}"]', f'"{IP}"', f"{IP} {DEVICE_ID}", "", "null"])
def test_non_object_body_keeps_only_size_and_hmac(text):
    rejection = only_rejection(text)
    assert rejection.masked_body is None
    assert rejection.body_bytes == len(text.encode())
    assert rejection.body_hmac == token(KEY, "body", text.encode())
    assert IP not in rejection_text(rejection) and DEVICE_ID not in rejection_text(rejection)


def test_body_bytes_counts_utf8():
    assert only_rejection('"é€"').body_bytes == len('"é€"'.encode())


# --- the key property: every message exactly once -------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
version_text = st.tuples(st.integers(0, 3000), st.integers(0, 1200), st.integers(0, 1200)).map(
    lambda v: ".".join(map(str, v))
)
valid_version = st.tuples(st.integers(0, 2146), st.integers(0, 999), st.integers(0, 999)).map(
    lambda v: ".".join(map(str, v))
)
field_values = {
    "user_id": st.uuids().map(str) | st.text(max_size=140) | json_values,
    "app_version": st.sampled_from(["2.3.0", "3.7", "0.96", "2.00"]) | version_text | st.text(max_size=8) | json_values,
    "device_type": st.sampled_from(["android", "ios", "IOS "]) | st.text(max_size=40) | json_values,
    "ip": st.ip_addresses().map(str)
    | st.sampled_from(["::ffff:1.2.3.4", " 10.0.0.1 "])
    | st.text(max_size=20)
    | json_values,
    "device_id": st.from_regex(r"\A\d{3}-\d{2}-\d{4}\Z") | st.text(max_size=20) | json_values,
    "locale": st.none() | st.sampled_from(["RU", "PH", ""]) | st.text(max_size=40) | json_values,
}
valid_values = {
    "user_id": st.uuids().map(str),
    "app_version": valid_version,
    "device_type": st.sampled_from(["android", "ios"]),
    "ip": st.ip_addresses().map(str),
    "device_id": st.from_regex(r"\A\d{3}-\d{2}-\d{4}\Z"),
    "locale": st.none() | st.sampled_from(["RU", "PH"]),
}
extras = st.dictionaries(
    st.sampled_from(["IP", "Device_Id", "nested", "x"]) | st.text(max_size=6), json_values, max_size=2
)


def merged(event, extra):
    return {**extra, **event}


valid_events = st.builds(merged, st.fixed_dictionaries(valid_values), extras)
late_failures = st.sampled_from(["", " ", "a\x00b", "a\nb", "\x7f", "x" * 33, "x" * 129, "\u0130" * 20]) | st.text(
    st.characters(max_codepoint=0x7F), max_size=140
)  # empty, control characters, too long
one_bad_field = st.sampled_from(sorted(field_values)).flatmap(
    lambda f: st.tuples(st.just(f), late_failures | field_values[f])
)
nearly_valid_events = st.builds(lambda e, bad: {**e, bad[0]: bad[1]}, valid_events, one_bad_field)
any_events = st.builds(merged, st.fixed_dictionaries({}, optional=field_values), extras)
bodies = st.one_of(
    valid_events.map(json.dumps),
    any_events.map(json.dumps),
    nearly_valid_events.map(json.dumps),
    any_events.map(lambda e: json.dumps(e, ensure_ascii=False)),
    json_values.map(json.dumps),
    st.text(max_size=60),
    st.tuples(valid_events.map(json.dumps), st.integers(0, 80)).map(lambda t: t[0][: t[1]]),  # truncated
)


def check_exactly_once(texts: list[str]):
    messages = [message(t, message_id=f"m{i}") for i, t in enumerate(texts)]
    result = build_batch(messages, PiiKeys(KEY))
    ids = list(result.rows["message_id"]) + [r.message_id for r in result.rejections]
    assert sorted(ids) == sorted(m.message_id for m in messages)
    assert {r.reason for r in result.rejections} <= REASONS
    assert list(result.rows.columns) == COLUMNS
    MaskedLogin.validate(result.rows)
    texts_by_id = {m.message_id: m.body for m in messages}
    for row in result.rows.itertuples():  # each row still belongs to its own message
        event = json.loads(texts_by_id[str(row.message_id)])
        assert row.masked_ip == token(KEY, "ip", canonical_ip(event["ip"]))
        assert row.masked_device_id == token(KEY, "device_id", event["device_id"].strip())
    for r in result.rejections:
        assert r.masked_body is None or isinstance(json.loads(r.masked_body), dict)
    return result


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(bodies, max_size=12))
def test_every_message_exactly_once(texts):
    check_exactly_once(texts)


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(valid_events.map(json.dumps) | nearly_valid_events.map(json.dumps), min_size=1, max_size=12))
def test_every_message_exactly_once_late_failures(texts):
    """Mostly rows that fail only in schema validation, mixed with valid ones: each row keeps its message."""
    check_exactly_once(texts)


@settings(max_examples=40)
@given(st.lists(valid_events, min_size=1, max_size=8))
def test_valid_events_all_become_rows(events):
    result = batch(*(json.dumps(e) for e in events))
    assert result.rejections == []
    assert len(result.rows) == len(events)
    pii = {e[f] for e in events for f in ("ip", "device_id")}
    csv = result.rows.to_csv()
    assert [v for v in pii if v in csv] == []


# --- regressions: bugs found by these tests and fixed ------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["[" * 100_000 + "]" * 100_000, '{"a":' * 600 + "1" + "}" * 600],
    ids=["array-100000-deep", "object-600-deep"],
)
def test_deep_nesting_is_rejected_not_raised(text):
    assert len(text.encode()) <= MAX_BODY_BYTES
    result = batch(body(), text)
    assert len(result.rows) == 1 and len(result.rejections) == 1


@pytest.mark.parametrize("field", ["user_id", "device_type", "locale"])
def test_lone_surrogate_is_rejected(field):
    text = body(**{field: "a\ud800b"})
    assert "\\ud800" in text
    result = batch(text)
    assert len(result.rows) == 0 and len(result.rejections) == 1


@pytest.mark.parametrize("field, value", [("user_id", ""), ("user_id", "   "), ("device_type", " ")])
def test_empty_value_reason(field, value):
    assert only_rejection(body(**{field: value})).reason == "empty_value"


def test_out_of_range_number_is_invalid_json():
    rejection = only_rejection(body(score=DROP, user_id=DROP)[:-1] + ', "score": 1e400}')
    assert (rejection.reason, rejection.masked_body) == ("invalid_json", None)


def test_redelivered_copy_in_one_batch_keeps_the_row():
    text = body()
    result = build_batch([message(text, message_id="same"), message(text, message_id="same")], PiiKeys(KEY))
    assert list(result.rows["message_id"]) == ["same"]


# --- the vault and redacted quarantine bodies -----------------------------------------------------

VAULT_KEY = VaultKey.from_secret(bytes(range(100, 132)))


def test_vault_entries_for_valid_rows_only_with_originals_as_received():
    texts = [body(ip=f" {IP} "), body(user_id="a\x00b"), "nope", body(ip="::FFFF:1.2.3.4", device_id=" d-1 ")]
    messages = [message(text) for text in texts]
    result = build_batch(messages, PiiKeys(KEY, VAULT_KEY))
    assert list(result.rows["message_id"]) == [messages[0].message_id, messages[3].message_id]
    assert [entry.message_id for entry in result.vault] == list(result.rows["message_id"])
    assert [VAULT_KEY.open_login(entry) for entry in result.vault] == [
        (f" {IP} ", DEVICE_ID),
        ("::FFFF:1.2.3.4", " d-1 "),
    ]
    assert list(result.rows.columns) == COLUMNS  # ciphertext never enters the frame


def test_no_vault_entries_without_a_vault_key():
    assert build_batch([message(body())], PiiKeys(KEY)).vault == []


def test_quarantined_body_redacts_its_own_pii_from_every_other_field_and_name():
    device_id = "device-not-shaped-like-the-sample"
    event = {
        "user_id": f"user {IP}",
        "app_version": "v1",
        "device_type": device_id,
        "ip": IP,
        "locale": DEVICE_ID,
        "device_id": device_id,
        IP: device_id,
        "nested": [{"note": f"{device_id} at {IP}"}, 3232235777],
        "2001:db8::1": "2001:0DB8::1",
    }
    rejection = only_rejection(json.dumps(event))
    assert rejection.reason == "invalid_app_version"
    for value in (IP, device_id, DEVICE_ID, "2001:db8::1", "2001:0DB8::1"):
        assert value not in rejection_text(rejection)
    masked = masked_body(rejection)
    assert masked["user_id"] == "user [redacted]" and masked["device_type"] == masked["locale"] == "[redacted]"
    assert masked["ip"] == token(KEY, "ip", IP) and masked["app_version"] == "v1"
    assert masked["nested"][0]["note"].startswith("tok:s:") and masked["nested"][1].startswith("tok:n:")
