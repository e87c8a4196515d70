"""Why the tokens are keyed: the exercise's unkeyed SHA-256 of an IP is reversed by enumerating the
address space; our HMAC tokens are not, without the key. Plus determinism, key separation, normalisation.

The brute-force figures are printed at the end of every test run (conftest's terminal summary)."""

import hashlib
import hmac
import ipaddress
import os
import subprocess
import sys
import time

from logins_pipeline.core.keys import development_key
from logins_pipeline.core.masking import MaskingKey, parse_masking_key, pii_tokens

KEY = MaskingKey.from_secret(os.urandom(32))
OTHER_KEY = MaskingKey.from_secret(os.urandom(32))
NETWORK = ipaddress.ip_network("10.20.0.0/16")
VICTIM_IPS = ["10.20.0.7", "10.20.13.37", "10.20.99.99", "10.20.200.1", "10.20.255.254"]
DEVICE_ID = "900-00-0135"


def exercise_mask(ip: str) -> str:
    """The exercise's masking: plain SHA-256, no key."""
    return hashlib.sha256(ip.encode()).hexdigest()


def enumerate_and_match(masked: set[str], candidate_hashes) -> tuple[dict[str, str], float]:
    """What an attacker does: hash every address of the network, keep the hashes found among `masked`."""
    started = time.perf_counter()
    found = {}
    for address in NETWORK:
        text = str(address)
        for digest in candidate_hashes(text):
            if digest in masked:
                found[digest] = text
    return found, time.perf_counter() - started


def attacker_guesses(text: str) -> list[str]:
    """Without the key: the unkeyed hash, our exact message format unkeyed, and HMAC under guessable keys."""
    data = text.encode()
    return [
        hashlib.sha256(data).hexdigest(),
        hashlib.sha256(b"ip\x00" + data).hexdigest(),
        hmac.new(b"", b"ip\x00" + data, hashlib.sha256).hexdigest(),
        hmac.new(bytes(32), b"ip\x00" + data, hashlib.sha256).hexdigest(),
    ]


def test_brute_force_reverses_unkeyed_sha256_but_not_our_tokens(record_property):
    exercise = {exercise_mask(ip) for ip in VICTIM_IPS}
    ours = {pii_tokens(KEY, ip, DEVICE_ID)[0] for ip in VICTIM_IPS}

    reversed_exercise, exercise_seconds = enumerate_and_match(exercise, lambda text: [exercise_mask(text)])
    reversed_ours, ours_seconds = enumerate_and_match(ours, attacker_guesses)
    with_key, key_seconds = enumerate_and_match(ours, lambda text: [pii_tokens(KEY, text, DEVICE_ID)[0]])

    assert sorted(reversed_exercise.values()) == sorted(VICTIM_IPS)
    assert reversed_ours == {}
    assert sorted(with_key.values()) == sorted(VICTIM_IPS)  # so the key is the secret to keep
    candidates = NETWORK.num_addresses
    report = "\n".join(
        [
            f"enumerating {NETWORK} ({candidates:,} candidates) against {len(VICTIM_IPS)} masked IPs:",
            f"  exercise's unkeyed SHA-256:            {len(reversed_exercise)} of {len(VICTIM_IPS)} reversed "
            f"in {exercise_seconds:.2f} s  ({', '.join(sorted(reversed_exercise.values()))})",
            f"    at that rate all 2^32 IPv4 addresses take {exercise_seconds * 2**32 / candidates / 3600:.1f} h "
            "of one core in pure Python (far less on a GPU)",
            f"  our HMAC tokens, without the key:      {len(reversed_ours)} of {len(VICTIM_IPS)} reversed "
            f"in {ours_seconds:.2f} s  ({len(attacker_guesses('x')) * candidates:,} guesses)",
            f"  our HMAC tokens, with the key (stolen): {len(with_key)} of {len(VICTIM_IPS)} reversed "
            f"in {key_seconds:.2f} s  -> the key is the secret to protect",
        ]
    )
    print(report)
    record_property("brute_force", report)


def test_same_value_same_token_across_parses_and_processes():
    text = development_key().removeprefix("dev:")
    here = pii_tokens(parse_masking_key(text, development=False), "10.20.0.7", DEVICE_ID)
    assert here == pii_tokens(parse_masking_key(text, development=False), "10.20.0.7", DEVICE_ID)
    program = (
        "import os; from logins_pipeline.core.masking import parse_masking_key, pii_tokens; "
        "print(*pii_tokens(parse_masking_key(os.environ['K'], development=False), '10.20.0.7', '900-00-0135'))"
    )
    other_process = subprocess.run(
        [sys.executable, "-c", program], env={**os.environ, "K": text}, capture_output=True, text=True, check=True
    )
    assert tuple(other_process.stdout.split()) == here


def test_different_keys_give_unrelated_tokens():
    values = [str(address) for address in list(NETWORK)[:2000]]
    ours = [pii_tokens(KEY, v, v)[0] for v in values]
    theirs = [pii_tokens(OTHER_KEY, v, v)[0] for v in values]
    assert not set(ours) & set(theirs)
    differing_bits = sum(bin(int(a, 16) ^ int(b, 16)).count("1") for a, b in zip(ours, theirs, strict=True))
    assert 0.48 < differing_bits / (256 * len(values)) < 0.52  # about half the bits, as for random pairs


def test_normalisation_makes_equal_addresses_equal():
    same_ip = ["10.20.0.7", " 10.20.0.7\n", "::ffff:10.20.0.7", "::FFFF:a14:7", "0:0:0:0:0:ffff:0a14:0007"]
    assert len({pii_tokens(KEY, ip, DEVICE_ID)[0] for ip in same_ip}) == 1
    same_v6 = ["2001:db8::1", "2001:DB8::1", "2001:0db8:0000:0000:0000:0000:0000:0001", " 2001:db8:0:0:0:0:0:1 "]
    assert len({pii_tokens(KEY, ip, DEVICE_ID)[0] for ip in same_v6}) == 1
    assert len({pii_tokens(KEY, "10.20.0.7", d)[1] for d in (DEVICE_ID, f" {DEVICE_ID} ", f"\t{DEVICE_ID}\n")}) == 1
    assert pii_tokens(KEY, "10.20.0.7", DEVICE_ID)[0] != pii_tokens(KEY, "10.20.0.8", DEVICE_ID)[0]
