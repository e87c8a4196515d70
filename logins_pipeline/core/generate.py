"""Realistic synthetic login events, for seeding and benchmarks (never real people)."""

import ipaddress
import random
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

DEVICE_TYPES = ("android", "ios")
LOCALES = ("RU", "PH", "US", "DE", "BR", "IN", "FR", "JP", "ID", "CN", None, None)


def _ip(rng: random.Random) -> str:
    if rng.random() < 0.05:
        return str(ipaddress.IPv6Address(rng.getrandbits(128)))
    return str(ipaddress.IPv4Address(rng.getrandbits(32)))


def _version(rng: random.Random) -> str:
    parts = [rng.randint(0, 9), rng.randint(0, 99), rng.randint(0, 20)]
    return ".".join(map(str, parts if rng.random() < 0.8 else parts[:2]))


def _user_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _device_id(rng: random.Random) -> str:
    return f"{rng.randint(0, 999):03d}-{rng.randint(0, 99):02d}-{rng.randint(0, 9999):04d}"


def generate_logins(count: int, seed: int | None = None) -> Iterator[dict[str, Any]]:
    """Yield `count` login events shaped like the sample: a UUID user, a 2- or 3-part version, an IPv4
    (or, now and then, IPv6) address, a nullable locale and an SSN-shaped device id. Every event is a new
    user (the fault tests count stored logins by user_id)."""
    rng = random.Random(seed)
    for _ in range(count):
        ip = _ip(rng)
        version = _version(rng)
        yield {
            "user_id": _user_id(rng),
            "app_version": version,
            "device_type": rng.choice(DEVICE_TYPES),
            "ip": ip,
            "locale": rng.choice(LOCALES),
            "device_id": _device_id(rng),
        }


# --- activity with repeats, for the analytics ------------------------------------------------------------

LOGINS_PER_USER = 8
LOGINS_PER_SHARED_VALUE = 2_000  # one shared device and one shared address per this many logins


@dataclass(frozen=True)
class Login:
    event: dict[str, Any]
    days_ago: int  # 0: today (UTC)


@dataclass
class _User:
    user_id: str
    devices: list[tuple[str, str]]  # [(device_id, device_type)]; the first is the usual one
    addresses: list[str]  # home, mobile
    locale: str | None
    version: str
    shared_device: tuple[str, str] | None = None  # a device this user shares with others, used for half their logins


def _population(rng: random.Random, count: int) -> list[_User]:
    """Users with one or two devices and two addresses. A few devices are shared by a group of 3-8 users
    (a family tablet, a shop's demo phone, an account farm), and a few addresses by 10-30 users (an
    office, a carrier NAT): one of each per LOGINS_PER_SHARED_VALUE logins."""
    users = []
    for _ in range(max(1, count // LOGINS_PER_USER)):
        devices = [(_device_id(rng), rng.choice(DEVICE_TYPES)) for _ in range(2 if rng.random() < 0.25 else 1)]
        users.append(_User(_user_id(rng), devices, [_ip(rng), _ip(rng)], rng.choice(LOCALES), _version(rng)))
    for _ in range(max(1, count // LOGINS_PER_SHARED_VALUE)):
        device = (_device_id(rng), rng.choice(DEVICE_TYPES))
        for user in rng.sample(users, min(len(users), rng.randint(3, 8))):
            user.shared_device = device
        address = _ip(rng)
        for user in rng.sample(users, min(len(users), rng.randint(10, 30))):
            user.addresses[1] = address
    return users


def generate_activity(count: int, days: int = 1, seed: int | None = None) -> list[Login]:
    """`count` logins of a population of users over the last `days` days, with the repeats real traffic
    has: a user logs in about LOGINS_PER_USER times, mostly from their usual device and home address, now
    and then from their other device or address, and now and then upgrades the app."""
    rng = random.Random(seed)
    users = _population(rng, count)
    logins = []
    for _ in range(count):
        user = rng.choice(users)
        if user.shared_device and rng.random() < 0.5:
            device_id, device_type = user.shared_device
        else:
            device_id, device_type = user.devices[0] if rng.random() < 0.7 else rng.choice(user.devices)
        if rng.random() < 0.05:
            user.version = _version(rng)
        event = {
            "user_id": user.user_id,
            "app_version": user.version,
            "device_type": device_type,
            "ip": user.addresses[0] if rng.random() < 0.5 else user.addresses[1],
            "locale": user.locale,
            "device_id": device_id,
        }
        logins.append(Login(event, rng.randrange(days)))
    return logins


@dataclass(frozen=True)
class DayFigures:
    """What the analytics must find for one day, computed here from the plaintext values."""

    logins: int
    users: int
    shared_devices: int
    shared_addresses: int
    new_device_logins: int


def expected_figures(logins: list[Login], device_min_users: int, address_min_users: int) -> dict[int, DayFigures]:
    """days_ago -> the day's figures: the ground truth that the SQL over masked tokens must reproduce."""
    by_day = defaultdict(list)
    for login in logins:
        by_day[login.days_ago].append(login.event)
    # (user, device) -> the earliest day (largest days_ago) it appears on
    first_day_of_pair: dict[tuple[str, str], int] = {}
    for login in logins:
        pair = (login.event["user_id"], login.event["device_id"])
        first_day_of_pair[pair] = max(first_day_of_pair.get(pair, -1), login.days_ago)

    def shared(events: list[dict[str, Any]], field: str, min_users: int) -> int:
        users = Counter(value for value, _ in {(e[field], e["user_id"]) for e in events})
        return sum(1 for n in users.values() if n >= min_users)

    return {
        day: DayFigures(
            logins=len(events),
            users=len({e["user_id"] for e in events}),
            shared_devices=shared(events, "device_id", device_min_users),
            shared_addresses=shared(events, "ip", address_min_users),
            new_device_logins=sum(1 for e in events if first_day_of_pair[(e["user_id"], e["device_id"])] == day),
        )
        for day, events in by_day.items()
    }
