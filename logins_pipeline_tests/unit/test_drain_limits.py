"""A run's limits: a chunk's size has an upper bound, and the bytes of bodies a run holds a lower one that
leaves each chunk in hand room for one receive of the largest bodies; both refused with a clear error."""

import pydantic
import pytest

from logins_pipeline.core.messages import ReceivedMessage
from logins_pipeline.defs.logins.assets import IngestConfig
from logins_pipeline.drain.ingest import MAX_CHUNK_SIZE, MIB, DrainLimits


def test_chunk_size_has_an_upper_bound():
    assert DrainLimits(chunk_size=MAX_CHUNK_SIZE).chunk_size == MAX_CHUNK_SIZE
    with pytest.raises(ValueError, match="chunk_size must be 1 to 15,000, not 15,001"):
        DrainLimits(chunk_size=MAX_CHUNK_SIZE + 1)
    with pytest.raises(pydantic.ValidationError, match="less than or equal to 15000"):
        IngestConfig(chunk_size=MAX_CHUNK_SIZE + 1)


def test_each_chunk_in_hand_gets_its_share_of_the_bytes():
    limits = DrainLimits(build_processes=4, max_bytes_in_hand=700 * MIB)
    assert (limits.chunks_in_hand, limits.chunk_bytes) == (7, 100 * MIB)
    assert DrainLimits(build_processes=0, max_bytes_in_hand=30 * MIB).chunk_bytes == 10 * MIB


def test_too_few_bytes_for_one_receive_per_chunk_are_refused():
    with pytest.raises(ValueError, match="max_bytes_in_hand must be at least 70 MiB with 4 build processes"):
        DrainLimits(build_processes=4, max_bytes_in_hand=70 * MIB - 1)


def test_the_default_fits_the_4_gib_task():
    """A run with 4 build workers holds at most its default bytes, and each worker a parsed copy of its chunk
    (about 3x its bodies): with the processes themselves (~0.4 GiB and ~0.3 GiB each), under 4 GiB."""
    limits = DrainLimits(build_processes=4)
    held = limits.max_bytes_in_hand + 4 * 3 * limits.chunk_bytes + 0.4 * 1024 * MIB + 4 * 0.3 * 1024 * MIB
    assert held < 4 * 1024 * MIB


@pytest.mark.parametrize("body, size", [("abc", 3), ("é€😀", 2 + 3 + 4), ("\udc80", 3)])
def test_a_body_is_measured_in_utf8_bytes_as_sqs_does(body, size):
    assert ReceivedMessage("m", "r", 0, 1, body).body_bytes == size
