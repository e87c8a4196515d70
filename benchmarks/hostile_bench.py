"""`make bench-hostile`: what one hostile message costs, the largest SQS hands over, of every shape.

Prints a Markdown table (and writes it to docs/benchmarks.md with --write, between its hostile-bench
markers): the seconds to quarantine one 256 KiB body of each shape in logins_pipeline_tests/hostile.py
(build_batch: parse, mask, the rejection; target < 1 s), and to redact 1 MiB of each hostile text (a log
record that long), the median of --reps runs, wall time on this machine as it is loaded.
"""

import argparse
import platform
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from markdown_section import write_section  # benchmarks/, run as a script

from logins_pipeline.core.masking import MaskingKey
from logins_pipeline.core.messages import ReceivedMessage
from logins_pipeline.core.pii_keys import PiiKeys
from logins_pipeline.core.redaction import redact
from logins_pipeline.core.transform import MAX_BODY_BYTES, build_batch
from logins_pipeline_tests.hostile import HOSTILE_BODIES, HOSTILE_TEXT

KEYS = PiiKeys(MaskingKey.from_secret(bytes(range(32))))
TARGET_SECONDS = 1.0


def median_seconds(reps: int, function: Callable[[str], object], argument: str) -> float:
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        function(argument)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def quarantine(body: str) -> str:
    [rejection] = build_batch([ReceivedMessage(str(uuid.uuid4()), "-", 1_700_000_000_000, 1, body)], KEYS).rejections
    return rejection.reason


def table(reps: int) -> str:
    lines = [
        f"{datetime.now(UTC):%Y-%m-%d}, {platform.machine()}, Python {platform.python_version()}, median of {reps}",
        "",
        "| input | seconds | outcome |",
        "|---|---|---|",
    ]
    for name, make_body in HOSTILE_BODIES.items():
        body = make_body(MAX_BODY_BYTES)
        seconds = median_seconds(reps, quarantine, body)
        verdict = "ok" if seconds < TARGET_SECONDS else f"OVER the {TARGET_SECONDS:.0f} s target"
        lines.append(
            f"| quarantine a {len(body.encode()) / 1024:.0f} KiB body: {name} | {seconds:.3f} | "
            f"{quarantine(body)}, {verdict} |"
        )
    for name, unit in HOSTILE_TEXT.items():
        text = unit * (1024 * 1024 // len(unit))
        seconds = median_seconds(reps, redact, text)
        lines.append(f"| redact 1 MiB of text: {name} | {seconds:.3f} | |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--write", type=Path, help="write the table into this Markdown file")
    args = parser.parse_args()
    text = table(args.reps)
    print(text)
    if args.write:
        write_section(args.write, text, "hostile-bench", "Hostile input (`make bench-hostile`)")


if __name__ == "__main__":
    main()
