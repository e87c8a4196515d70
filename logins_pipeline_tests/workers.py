"""Stand-ins for pipeline._build_in_worker that misbehave in the worker building a chunk whose first message
id says so: "dies-..." (the worker exits at once), "slow-..." (it takes SLOW_S), "raises-..." anywhere in
the chunk (a bug a message triggers), or that wait for a lock first.

They are module-level functions so that they pickle by name: a worker can run them. (A function defined in a
test cannot be pickled, so a patch made of one fails every submission before any worker runs it.) What they
do is told by the messages, not by this module's state: a worker is forked from the forkserver, not from
the test's process, so a value a test sets here is not the worker's.
"""

import dataclasses
import os
import threading
import time
from datetime import date

from logins_pipeline.core.messages import ReceivedMessage
from logins_pipeline.core.transform import Batch
from logins_pipeline.drain import pipeline

_build_in_worker = pipeline._build_in_worker
SLOW_S = 3.0
# Held by a thread of the test's process while the pool starts: a worker forked from that process would
# have it locked forever, one forked from the forkserver has its own.
LOCK = threading.Lock()


def marked(message: ReceivedMessage, behaviour: str) -> ReceivedMessage:
    """`message` with an id that makes a worker stand-in `behaviour` ("dies", "slow" or "raises")."""
    return dataclasses.replace(message, message_id=f"{behaviour}-{message.message_id}")


def build_or_die(messages: list[ReceivedMessage], first_kept: date | None) -> Batch:
    if messages[0].message_id.startswith("dies-"):
        os._exit(70)  # as a kill -9 or the OOM killer would leave it: no clean-up, no exception
    if messages[0].message_id.startswith("slow-"):
        time.sleep(SLOW_S)
    if any(m.message_id.startswith("raises-") for m in messages):
        raise RuntimeError("a bug this message triggers")
    return _build_in_worker(messages, first_kept)


def build_under_lock(messages: list[ReceivedMessage], first_kept: date | None) -> Batch:
    with LOCK:
        return _build_in_worker(messages, first_kept)
