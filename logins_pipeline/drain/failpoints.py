"""Test-only fault injection at named points of the drain; production never sets the variable.

    LOGINS_FAILPOINT="<point>[@<n>][:<seconds>|:stop][,<point>...]"

At the n-th passage through `point` (every passage without @n) the process kills itself with SIGKILL, a
real `kill -9` that runs no cleanup, or sleeps <seconds> if given, or stops itself with SIGSTOP (`stop`:
a hung process, which only SIGCONT or SIGKILL ends). Points: after_receive (a chunk is
received, nothing committed), after_build (a build worker has built a batch and not yet handed it back;
each worker counts its own passages, and a kill there kills the worker, not the run: the run builds that
chunk itself), after_commit (committed, nothing deleted), mid_delete (after the first
DeleteMessageBatch call of each thread's share of a chunk's deletes: with one receiver, once per chunk),
after_send (`redrive` has sent a group back to the login queue and not yet deleted it from the dead-letter
queue), erase_before_commit (`erase` has deleted and recomputed everything, audited, not yet committed).
A sleep or a stop is announced on stderr first ("failpoint after_build: holding 300 s (passage 2,
pid 4242)"), so that a test can act once a process is held there rather than after a guess of time.
"""

import os
import re
import signal
import sys
import threading
import time
from collections import Counter

VARIABLE = "LOGINS_FAILPOINT"
_passages: Counter = Counter()
_lock = threading.Lock()


def _spec_for(point: str) -> str:
    """The part of the variable that names `point` ("" if none does)."""
    return next((spec for spec in os.environ.get(VARIABLE, "").split(",") if re.split("[@:]", spec)[0] == point), "")


def current() -> str | None:
    """The variable as this process has it: a build worker is told it when it starts (drain/pipeline.py)."""
    return os.environ.get(VARIABLE)


def adopt(spec: str | None) -> None:
    """Take the run's variable as this process's own (a build worker's environment is its forkserver's)."""
    if spec is None:
        os.environ.pop(VARIABLE, None)
    else:
        os.environ[VARIABLE] = spec


def forget_passages() -> None:
    """Count from zero again: for a process that sets the variable for one test after another."""
    with _lock:
        _passages.clear()


def failpoint(point: str) -> None:
    spec = _spec_for(point)
    if not spec:
        return
    target, _, seconds = spec.partition(":")
    nth = target.partition("@")[2]
    with _lock:
        _passages[point] += 1
        passage = _passages[point]
    if nth and passage != int(nth):
        return
    if seconds:
        held = "stopping" if seconds == "stop" else f"holding {seconds} s"
        print(f"failpoint {point}: {held} (passage {passage}, pid {os.getpid()})", file=sys.stderr, flush=True)
    if seconds == "stop":
        os.kill(os.getpid(), signal.SIGSTOP)
    elif seconds:
        time.sleep(float(seconds))
    else:
        os.kill(os.getpid(), signal.SIGKILL)
