"""Messages in, masked rows and rejections out: parse, flatten, normalise, mask, validate.

Every message comes out exactly once: as a row of `Batch.rows` (validated by the MaskedLogin schema) or
as a `Rejection` with a reason code. Neither holds plaintext PII, and no reason text quotes a value.
"""

import json
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, NoReturn, cast

import orjson
import pandas as pd
import pandera.pandas as pa

from logins_pipeline.core.app_version import InvalidAppVersion, encode_app_version
from logins_pipeline.core.expiry import expired, kept_from_ms
from logins_pipeline.core.masking import MaskingKey, normalise_device_id, pii_tokens, token
from logins_pipeline.core.messages import ReceivedMessage
from logins_pipeline.core.pii_keys import PiiKeys
from logins_pipeline.core.quarantine import masked_body
from logins_pipeline.core.schema import COLUMNS, MaskedLogin
from logins_pipeline.core.vault import VaultEntry

MAX_BODY_BYTES = 256 * 1024
REQUIRED_TEXT_FIELDS = ("user_id", "app_version", "device_type", "ip", "device_id")

# Reason codes for quarantined messages (documented in the README).
BODY_TOO_LARGE = "body_too_large"
INVALID_JSON = "invalid_json"
NOT_AN_OBJECT = "not_an_object"
MISSING_FIELD = "missing_field"
WRONG_TYPE = "wrong_type"
INVALID_IP = "invalid_ip"
INVALID_DEVICE_ID = "invalid_device_id"
INVALID_APP_VERSION = "invalid_app_version"
EMPTY_VALUE = "empty_value"
VALUE_TOO_LONG = "value_too_long"
SCHEMA_VIOLATION = "schema_violation"
EXPIRED = "expired"


class Rejected(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Rejection:
    message_id: str
    reason: str
    detail: str
    masked_body: str | None  # the JSON object, masked by core/quarantine.py; None if not an object
    body_bytes: int
    body_hmac: str
    sent_at: datetime
    receive_count: int
    masking_key_id: str


@dataclass
class Batch:
    rows: pd.DataFrame  # validated MaskedLogin rows
    rejections: list[Rejection] = field(default_factory=list)
    repeats: int = 0  # messages whose id came twice in the batch (SQS delivers at least once)
    # With the vault on, the encrypted originals of each row's ip and device_id. Not a column of `rows`:
    # the MaskedLogin schema stays the shape of user_logins, and ciphertext never enters the frame.
    vault: list[VaultEntry] = field(default_factory=list)
    # The process that built it: a worker's (drain/pipeline.py) or the run's own.
    built_by: int = field(default_factory=os.getpid, compare=False)

    def reasons(self) -> Counter[str]:
        return Counter(r.reason for r in self.rejections)


def sent_at(message: ReceivedMessage) -> datetime:
    return datetime.fromtimestamp(message.sent_timestamp_ms / 1000, tz=UTC)


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400 parses as inf, which JSON cannot write back
        raise ValueError("number out of range")
    return value


def _object_without_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):  # a repeated key could smuggle a second value past another parser
        raise ValueError("duplicate key in object")
    return obj


_FLAT_SCALARS = (str, int, bool, type(None))


def _parse_flat_object(body: str) -> dict[str, Any] | None:
    """The common body, a flat object of strings, integers, booleans and nulls without escapes, parsed by
    orjson (3x faster); None for anything else, which the stdlib parser below handles strictly.

    orjson keeps the last of two equal keys, so duplicates are found by counting quotes: without
    backslashes every string of the text is a key or a string value, two quotes each, and a repeated key
    leaves more strings in the text than in the parsed object. Floats are left to the strict path too
    (orjson turns integers beyond 64 bits into floats)."""
    if "\\" in body:
        return None
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if type(value) is not dict:
        return None
    strings = len(value)
    for item in value.values():
        if type(item) is str:
            strings += 1
        elif type(item) not in _FLAT_SCALARS:
            return None
    return value if body.count('"') == 2 * strings else None


def parse_body(body: str) -> dict[str, Any]:
    # A character is at most 4 UTF-8 bytes: only a long body needs encoding to be measured.
    if len(body) * 4 > MAX_BODY_BYTES and len(body.encode("utf-8", "surrogatepass")) > MAX_BODY_BYTES:
        raise Rejected(BODY_TOO_LARGE, f"body is larger than {MAX_BODY_BYTES} bytes")
    flat = _parse_flat_object(body)
    if flat is not None:
        return flat
    try:
        value = json.loads(
            body.removeprefix("\ufeff"),  # one leading byte order mark: RFC 8259 lets a parser ignore it
            parse_constant=_reject_constant,
            parse_float=_finite_float,
            object_pairs_hook=_object_without_duplicate_keys,
        )
    except RecursionError:
        raise Rejected(INVALID_JSON, "nested too deeply") from None
    except ValueError as error:  # JSONDecodeError included; its message quotes positions, not values
        detail = error.msg if isinstance(error, json.JSONDecodeError) else str(error)
        raise Rejected(INVALID_JSON, detail) from None
    if not isinstance(value, dict):
        raise Rejected(NOT_AN_OBJECT, f"body is a JSON {type(value).__name__}, not an object")
    return value


def _text_field(event: dict[str, Any], name: str) -> str:
    value = event[name]
    if not isinstance(value, str):
        raise Rejected(WRONG_TYPE, f"{name} must be a string, got {type(value).__name__}")
    return value


# flatten_event's output, in order; build_batch derives sent_at, create_date and masking_key_id.
FLAT_COLUMNS = [
    "message_id",
    "user_id",
    "device_type",
    "masked_ip",
    "masked_device_id",
    "locale",
    "app_version",
    "sent_timestamp_ms",
]


def _required_text(event: dict[str, Any]) -> tuple[str, str, str, str, str]:
    get = event.get
    values = user_id, version, device_type, ip, device_id = (
        get("user_id"),
        get("app_version"),
        get("device_type"),
        get("ip"),
        get("device_id"),
    )
    if str is type(user_id) is type(version) is type(device_type) is type(ip) is type(device_id):
        return cast(tuple[str, str, str, str, str], values)
    if None in values:
        missing = [name for name, value in zip(REQUIRED_TEXT_FIELDS, values, strict=True) if value is None]
        raise Rejected(MISSING_FIELD, "missing or null: " + ", ".join(missing))
    for name, value in zip(REQUIRED_TEXT_FIELDS, values, strict=True):
        if type(value) is not str:
            raise Rejected(WRONG_TYPE, f"{name} must be a string, got {type(value).__name__}")
    raise AssertionError("unreachable: every value is a string, or one is not")


def flatten_event(event: dict[str, Any], message: ReceivedMessage, key: MaskingKey) -> tuple[Any, ...]:
    """One login event -> one unvalidated row (FLAT_COLUMNS) of masked, normalised values.

    This runs once per message: it is written for speed (tuples, no per-row datetime)."""
    user_id, version, device_type, ip, device_id = _required_text(event)
    locale = event.get("locale")
    if locale is not None and type(locale) is not str:
        raise Rejected(WRONG_TYPE, f"locale must be a string or null, got {type(locale).__name__}")
    try:
        masked_ip, masked_device_id = pii_tokens(key, ip, device_id)  # normalises both
    except ValueError:
        raise Rejected(INVALID_IP, "ip is not a valid IPv4 or IPv6 address") from None
    if not normalise_device_id(device_id):
        raise Rejected(INVALID_DEVICE_ID, "device_id is empty")
    try:
        app_version = encode_app_version(version)
    except InvalidAppVersion as error:
        raise Rejected(INVALID_APP_VERSION, str(error)) from None
    return (
        message.message_id,
        user_id.strip(),
        device_type.strip().lower(),
        masked_ip,
        masked_device_id,
        locale.strip() or None if locale else None,
        app_version,
        message.sent_timestamp_ms,
    )


def rows_frame(rows: list[tuple[Any, ...]], key: MaskingKey) -> pd.DataFrame:
    """flatten_event rows -> a MaskedLogin-shaped frame; timestamps are converted once per column."""
    frame = pd.DataFrame.from_records(rows, columns=FLAT_COLUMNS)
    sent = pd.to_datetime(frame.pop("sent_timestamp_ms"), unit="ms", utc=True)
    frame["create_date"] = sent.dt.floor("D").dt.tz_localize(None)
    frame["sent_at"] = sent
    frame["masking_key_id"] = key.key_id
    return frame[COLUMNS]


def _rejection(message: ReceivedMessage, error: Rejected, event: dict[str, Any] | None, key: MaskingKey) -> Rejection:
    raw = message.body.encode("utf-8", "surrogatepass")
    return Rejection(
        message_id=message.message_id,
        reason=error.reason,
        detail=error.detail,
        masked_body=masked_body(event, key),
        body_bytes=len(raw),
        body_hmac=token(key, "body", raw),
        sent_at=sent_at(message),
        receive_count=message.receive_count,
        masking_key_id=key.key_id,
    )


def _schema_reason(check: str, value: object) -> str:
    if check.startswith("str_length") and isinstance(value, str):
        return EMPTY_VALUE if value == "" else VALUE_TOO_LONG
    return SCHEMA_VIOLATION


def _schema_rejections(frame: pd.DataFrame, error: pa.errors.SchemaErrors) -> dict[int, Rejected]:
    """Row index -> the first schema failure of that row. Failure cases hold only masked values."""
    failures: dict[int, Rejected] = {}
    for case in error.failure_cases.itertuples():
        if pd.isna(case.index):
            raise error  # a failure of the whole frame (wrong columns): a bug, not bad input
        check = str(case.check)
        reason = _schema_reason(check, case.failure_case)
        failures.setdefault(int(case.index), Rejected(reason, f"{case.column}: {check}"))
    return failures


def unique_by_id(messages: list[ReceivedMessage]) -> list[ReceivedMessage]:
    """The first message of each id: SQS may hand the same message over twice."""
    first: dict[str, ReceivedMessage] = {}
    for message in messages:
        first.setdefault(message.message_id, message)
    return list(first.values())


def build_batch(messages: list[ReceivedMessage], keys: PiiKeys, first_kept: date | None = None) -> Batch:
    """Parse, flatten, normalise, mask and validate a batch of messages; with a vault key, also encrypt the
    original ip and device_id of every valid row. A message sent before `first_kept` (None: no day has expired)
    is rejected as expired before its body is read: its day is past retention, so not even its masked body is
    kept, only its size and keyed hash."""
    key = keys.masking
    kept_from = kept_from_ms(first_kept)
    rows: list[tuple[Any, ...]] = []
    row_events: list[dict[str, Any]] = []
    row_messages: list[ReceivedMessage] = []
    rejections: list[Rejection] = []
    unique = unique_by_id(messages)
    for message in unique:
        event = None
        try:
            if expired(message.sent_timestamp_ms, kept_from):
                raise Rejected(EXPIRED, f"sent before {first_kept}, the first day LOGINS_RETENTION_DAYS keeps")
            event = parse_body(message.body)
            rows.append(flatten_event(event, message, key))
            row_events.append(event)
            row_messages.append(message)
        except Rejected as error:
            rejections.append(_rejection(message, error, event, key))
    frame = rows_frame(rows, key)
    failures: dict[int, Rejected] = {}
    try:
        frame = MaskedLogin.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as error:
        failures = _schema_rejections(frame, error)
        for index, failure in sorted(failures.items()):
            rejections.append(_rejection(row_messages[index], failure, row_events[index], key))
        frame = MaskedLogin.validate(frame.drop(index=list(failures)).reset_index(drop=True))
    vault = (
        [
            keys.vault.seal_login(message.message_id, event["ip"], event["device_id"])
            for index, (message, event) in enumerate(zip(row_messages, row_events, strict=True))
            if index not in failures
        ]
        if keys.vault
        else []
    )
    return Batch(rows=frame, rejections=rejections, repeats=len(messages) - len(unique), vault=vault)
