"""A stand-in for pipeline._build_in_worker that dies in the worker building one chunk, and takes its time
over another.

It is a module-level function so that it pickles by name: a worker can run it. (A function defined in a test
cannot be pickled, so a patch made of one fails every submission before any worker runs it.)
"""

import os
import time

from logins_pipeline.core.messages import ReceivedMessage
from logins_pipeline.core.transform import Batch
from logins_pipeline.drain import pipeline

_build_in_worker = pipeline._build_in_worker
# First message ids of the chunk whose worker dies, and of a chunk still being built when that happens. Set
# before the first submission: workers are forked from the run's process when the pool starts, with a copy.
DIES_ON: str | None = None
SLOW_ON: str | None = None
SLOW_S = 3.0


def build_or_die(messages: list[ReceivedMessage]) -> Batch:
    if messages[0].message_id == DIES_ON:
        os._exit(70)  # as a kill -9 or the OOM killer would leave it: no clean-up, no exception
    if messages[0].message_id == SLOW_ON:
        time.sleep(SLOW_S)
    return _build_in_worker(messages)
