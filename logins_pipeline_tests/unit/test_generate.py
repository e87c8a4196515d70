"""Synthetic logins: deterministic for a seed, shaped like the sample, and all valid."""

import ipaddress
import json
import uuid

import pytest

from logins_pipeline.core.generate import generate_logins
from logins_pipeline.core.masking import MaskingKey
from logins_pipeline.core.messages import ReceivedMessage
from logins_pipeline.core.transform import build_batch

KEY = MaskingKey.from_secret(bytes(32))
FIELDS = {"user_id", "app_version", "device_type", "ip", "locale", "device_id"}


@pytest.mark.parametrize("count", [0, 1, 7, 500])
def test_count(count):
    assert len(list(generate_logins(count, seed=1))) == count


def test_deterministic_for_a_seed():
    assert list(generate_logins(50, seed=42)) == list(generate_logins(50, seed=42))


def test_seeds_differ():
    assert list(generate_logins(20, seed=1)) != list(generate_logins(20, seed=2))


def test_shape():
    events = list(generate_logins(1000, seed=3))
    assert all(set(e) == FIELDS for e in events)
    assert all(uuid.UUID(e["user_id"]).version == 4 for e in events)
    versions = {type(ipaddress.ip_address(e["ip"])) for e in events}
    assert versions == {ipaddress.IPv4Address, ipaddress.IPv6Address}
    assert {len(e["app_version"].split(".")) for e in events} == {2, 3}
    assert any(e["locale"] is None for e in events)


@pytest.mark.parametrize("seed", [0, 1, 2024])
def test_all_valid_rows(seed):
    events = list(generate_logins(300, seed=seed))
    messages = [ReceivedMessage(str(i), "receipt", 1_700_000_000_000, 1, json.dumps(e)) for i, e in enumerate(events)]
    result = build_batch(messages, KEY)
    assert result.rejections == []
    assert len(result.rows) == len(events)
