"""`make breaks-erasure`: each step of the erasure removed from the code in turn, and the erasure tests run.

Issue 22 asks that each proof of the erasure fail when its step is gone. This removes one step at a time
(a text replaced in a source file, put back afterwards whatever happens), runs
logins_pipeline_tests/integration/test_erasure.py, and prints which tests failed and on what. A step whose
removal fails no test exits 1. --write puts the table into docs/privacy.md, between its erasure-breaks
markers. It edits the working tree: run it on a clean checkout, not beside other work.
"""

import argparse
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from markdown_section import write_section  # benchmarks/ (the Makefile's PYTHONPATH)

ROOT = Path(__file__).resolve().parents[1]
TESTS = "logins_pipeline_tests/integration/test_erasure.py"


@dataclass(frozen=True)
class Break:
    step: str
    path: str
    old: str
    new: str


BREAKS = [
    Break(
        "quarantined messages deleted",
        "logins_pipeline/erasure.py",
        'f"DELETE FROM public.login_quarantine WHERE {QUARANTINED_OF_USER}"',
        'f"DELETE FROM public.login_quarantine WHERE false AND {QUARANTINED_OF_USER}"',
    ),
    Break(
        "the user's days recomputed",
        "logins_pipeline/erasure.py",
        "        for day in days:\n",
        "        for day in []:\n",
    ),
    Break(
        "suppression list written",
        "logins_pipeline/erasure.py",
        '" VALUES (%s, %s, now() + make_interval(secs => %s))"',
        '" SELECT %s, %s, now() + make_interval(secs => %s) WHERE false"',
    ),
    Break(
        "suppression in the drain",
        "logins_pipeline/drain/ingest.py",
        "        users = self.suppression() if messages else frozenset()\n",
        "        users = frozenset()\n",
    ),
    Break(
        "suppression in redrive", "logins_pipeline/drain/redrive.py", "        if suppressed:\n", "        if False:\n"
    ),
    Break(
        "files rewritten",
        "logins_pipeline/resources/erased_users.py",
        '    done = [r for r in rewrite if scalar(conn, "SELECT public.logins_rewrite(%s)", (r,))]\n',
        "    done = [r for r in rewrite if False]\n",
    ),
    Break(
        "one transaction",
        "logins_pipeline/erasure.py",
        "    with conn.transaction():\n        days = [",
        "    with __import__('contextlib').nullcontext():\n        days = [",
    ),
    Break(
        "vault rows counted",
        "logins_pipeline/erasure.py",
        '"pii_vault.login_pii": int(scalar(conn, "SELECT public.logins_erase_vault(%(user)s)", params)),',
        '"pii_vault.login_pii": 0,',
    ),
]


def first_failure(output: str, test: str) -> str:
    """The statement `test` failed on (pytest's `>` line) and the first line of its error."""
    section = output.split(f"_ {test} _", 1)[-1]
    found = re.search(r"^>\s+(.+)$(?:\n(?!E ).*$)*\nE +(.+)$", section, re.M)
    return f"{found.group(1).strip()}` -> `{found.group(2).strip()}"[:220] if found else "?"


def run_broken(step: Break) -> tuple[str, list[tuple[str, str]]]:
    file = ROOT / step.path
    original = file.read_text()
    if original.count(step.old) != 1:
        raise SystemExit(f"{step.step}: the text to replace is not once in {step.path}; update {__file__}")
    file.write_text(original.replace(step.old, step.new))
    try:
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--no-header", "-rf", TESTS],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
    finally:
        file.write_text(original)
    failed = re.findall(r"^FAILED \S+::(\S+)", result.stdout, re.M)
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else "no output"
    return summary, [(test, first_failure(result.stdout, test)) for test in failed]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", type=Path, help="write the table into this Markdown file")
    args = parser.parse_args()
    lines = ["| step removed | test_erasure.py | the first test that failed, and on what |", "|---|---|---|"]
    silent = []
    for step in BREAKS:
        print(f"{step.step}: removed from {step.path}, running {TESTS}", file=sys.stderr, flush=True)
        summary, failed = run_broken(step)
        print(f"  {summary}", file=sys.stderr, flush=True)
        if not failed:
            silent.append(step.step)
        test, why = failed[0] if failed else ("none", "")
        lines.append(f"| {step.step} | {summary} | `{test}`: `{why.replace('|', '/')}` |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        write_section(args.write, text, "erasure-breaks", "Each step of the erasure, removed")
    if silent:
        raise SystemExit(f"no test failed without: {', '.join(silent)}")


if __name__ == "__main__":
    main()
