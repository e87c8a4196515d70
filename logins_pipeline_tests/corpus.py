"""The hostile-message corpus, data/hostile_messages.jsonl: one message a line, with the outcome it must get.

A line is {"name", "body", "expect"} or, for a body too long to store, {"name", "parts": [[text, count],
...], "bytes", "expect"} (the body is each text repeated count times, `bytes` long in UTF-8). "expect" is
"row" or a quarantine reason code. "sqs": "refused" marks a body the SQS server refuses at send time
(an empty body, characters outside XML's set, more than 1 MiB): those are checked at the pure-function
level only. Raw bytes such as a BOM or a NUL are written as JSON escapes in the line.
"""

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path

CORPUS_FILE = Path(__file__).parent / "data" / "hostile_messages.jsonl"
PII_FIELDS = ("ip", "device_id")


@dataclass(frozen=True)
class Case:
    name: str
    body: str
    expect: str
    sqs_refuses: bool

    @property
    def size(self) -> int:
        return len(self.body.encode("utf-8", "surrogatepass"))


def _case(spec: dict) -> Case:
    if "parts" in spec:
        body = "".join(text * count for text, count in spec["parts"])
        assert len(body.encode("utf-8")) == spec["bytes"], spec["name"]
    else:
        body = spec["body"]
    return Case(spec["name"], body, spec["expect"], spec.get("sqs") == "refused")


def load_corpus() -> list[Case]:
    return [_case(json.loads(line)) for line in CORPUS_FILE.read_text().splitlines()]


def _pii_in(value) -> set[str]:
    if isinstance(value, list) and all(isinstance(p, tuple) for p in value):  # an object, as its pairs
        found = set()
        for name, item in value:
            if name.lower() in PII_FIELDS and isinstance(item, str) and item.strip():
                found.add(item.strip())
            found |= _pii_in(item)
        return found
    if isinstance(value, list):
        return set().union(*map(_pii_in, value))
    return set()


def pii_values(cases: list[Case]) -> set[str]:
    """Every ip and device_id value in the corpus, at any depth, duplicate keys included."""
    found = set()
    for case in cases:
        with contextlib.suppress(ValueError, RecursionError):  # not JSON: no field to take a value from
            found |= _pii_in(json.loads(case.body.removeprefix("\ufeff"), object_pairs_hook=list))
    return found
