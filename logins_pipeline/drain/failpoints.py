"""Test-only fault injection at named points of the drain; production never sets the variable.

    LOGINS_FAILPOINT="<point>[@<n>][:<seconds>]"

At the n-th passage through `point` (every passage without @n) the process kills itself with SIGKILL, a
real `kill -9` that runs no cleanup, or sleeps <seconds> if given. Points: after_receive (a chunk is
received, nothing committed), after_build (a build worker has built a batch and not yet handed it back;
each worker counts its own passages), after_commit (committed, nothing deleted), mid_delete (after the first
DeleteMessageBatch call of each thread's share of a chunk's deletes: with one receiver, once per chunk),
after_send (`redrive` has sent a group back to the login queue and not yet deleted it from the dead-letter
queue).
"""

import os
import signal
import threading
import time
from collections import Counter

VARIABLE = "LOGINS_FAILPOINT"
_passages: Counter = Counter()
_lock = threading.Lock()


def failpoint(point: str) -> None:
    spec = os.environ.get(VARIABLE)
    if not spec:
        return
    target, _, seconds = spec.partition(":")
    name, _, nth = target.partition("@")
    if name != point:
        return
    with _lock:
        _passages[point] += 1
        passage = _passages[point]
    if nth and passage != int(nth):
        return
    if seconds:
        time.sleep(float(seconds))
    else:
        os.kill(os.getpid(), signal.SIGKILL)
