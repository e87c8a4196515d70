"""Synthetic logins: deterministic for a seed, shaped like the sample, and all valid."""

import ipaddress
import json
import uuid

import pytest

from logins_pipeline.core.generate import DayFigures, Login, expected_figures, generate_activity, generate_logins
from logins_pipeline.core.masking import MaskingKey
from logins_pipeline.core.messages import ReceivedMessage
from logins_pipeline.core.pii_keys import PiiKeys
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
    result = build_batch(messages, PiiKeys(KEY))
    assert result.rejections == []
    assert len(result.rows) == len(events)


# --- activity with repeats, and the ground truth of the analytics -----------------------------------------


def test_activity_is_deterministic_for_a_seed_and_spans_the_days():
    logins = generate_activity(2_000, days=3, seed=5)
    assert logins == generate_activity(2_000, days=3, seed=5)
    assert len(logins) == 2_000 and {login.days_ago for login in logins} == {0, 1, 2}
    assert all(set(login.event) == FIELDS for login in logins)


def test_activity_repeats_users_devices_and_addresses():
    events = [login.event for login in generate_activity(10_000, seed=6)]
    for field in ("user_id", "device_id", "ip"):
        assert len({e[field] for e in events}) < len(events) / 3, field


def test_activity_of_100_000_has_shared_devices_addresses_and_new_devices_every_day():
    figures = expected_figures(generate_activity(100_000, days=3, seed=1), 3, 10)
    assert all(f.shared_devices > 0 and f.shared_addresses > 0 for f in figures.values())
    assert figures[2].new_device_logins == figures[2].logins  # the first day: every device is new
    assert 0 < figures[0].new_device_logins < figures[0].logins


def login(user: str, device: str, ip: str, days_ago: int) -> Login:
    return Login(
        {"user_id": user, "app_version": "1.0", "device_type": "ios", "ip": ip, "locale": None, "device_id": device},
        days_ago,
    )


def test_expected_figures_by_hand():
    logins = [
        login("a", "d1", "ip1", 1),
        login("b", "d1", "ip1", 1),
        login("a", "d1", "ip1", 0),
        login("a", "d2", "ip1", 0),
        login("b", "d1", "ip2", 0),
        login("c", "d1", "ip2", 0),
    ]
    figures = expected_figures(logins, device_min_users=3, address_min_users=2)
    assert figures[1] == DayFigures(logins=2, users=2, shared_devices=0, shared_addresses=1, new_device_logins=2)
    # day 0: d1 has a, b, c (shared); ip2 has b, c; new pairs: (a, d2) and (c, d1)
    assert figures[0] == DayFigures(logins=4, users=3, shared_devices=1, shared_addresses=1, new_device_logins=2)
