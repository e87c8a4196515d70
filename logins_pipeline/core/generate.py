"""Realistic synthetic login events, for seeding and benchmarks (never real people)."""

import ipaddress
import random
import uuid
from collections.abc import Iterator
from typing import Any

DEVICE_TYPES = ("android", "ios")
LOCALES = ("RU", "PH", "US", "DE", "BR", "IN", "FR", "JP", "ID", "CN", None, None)


def generate_logins(count: int, seed: int | None = None) -> Iterator[dict[str, Any]]:
    """Yield `count` login events shaped like the sample: a UUID user, a 2- or 3-part version, an IPv4
    (or, now and then, IPv6) address, a nullable locale and an SSN-shaped device id."""
    rng = random.Random(seed)
    for _ in range(count):
        if rng.random() < 0.05:
            ip = str(ipaddress.IPv6Address(rng.getrandbits(128)))
        else:
            ip = str(ipaddress.IPv4Address(rng.getrandbits(32)))
        parts = [rng.randint(0, 9), rng.randint(0, 99), rng.randint(0, 20)]
        version = ".".join(map(str, parts if rng.random() < 0.8 else parts[:2]))
        yield {
            "user_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "app_version": version,
            "device_type": rng.choice(DEVICE_TYPES),
            "ip": ip,
            "locale": rng.choice(LOCALES),
            "device_id": f"{rng.randint(0, 999):03d}-{rng.randint(0, 99):02d}-{rng.randint(0, 9999):04d}",
        }
