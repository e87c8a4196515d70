"""When every message of a chunk fails outside the database, the run fails with an error that names no value;
a database that refuses every write fails the chunk at once, unbisected; a deadlock or serialization failure
is tried again."""

import dataclasses
import json

import pytest

from logins_pipeline.core.pii_keys import PiiKeys
from logins_pipeline.drain.isolation import MAX_FAILED_ALONE, ChunkFailed, SystemicFailure, store
from logins_pipeline_tests.chaos import Messages
from logins_pipeline_tests.conftest import as_messages

pytestmark = pytest.mark.integration


class QuotingHash:
    """Stands in for the masking key's inner hash state: absorbs the domain prefix ("ip" NUL), then raises
    with the value it is given, as a bug in the transform might."""

    def __init__(self, domain: bytes = b""):
        self.domain = domain

    def copy(self) -> "QuotingHash":
        return QuotingHash(self.domain)

    def update(self, data: bytes) -> None:
        if not self.domain:
            self.domain = data
            return
        raise ValueError(f"cannot hash {data!r} after {self.domain!r}")


def test_a_bug_failing_every_message_is_reported_without_the_value(pipeline):
    bodies = Messages.generate(3 * MAX_FAILED_ALONE).bodies
    pii = [json.loads(body)[field] for body in bodies for field in ("ip", "device_id")]
    broken_key = dataclasses.replace(pipeline.key, _inner=QuotingHash())

    with pipeline.postgres.connect() as conn, pytest.raises(ChunkFailed) as raised:
        store(conn, as_messages(bodies), PiiKeys(broken_key))

    quoting = str(raised.value.__context__)  # the error it hides names the value it was given
    assert [value for value in pii if value in quoting]
    text = str(raised.value)
    assert text.startswith(f"ValueError for each of {MAX_FAILED_ALONE + 1} messages, at ")
    assert text.endswith(" in update")  # where it was raised: QuotingHash.update
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    assert [value for value in pii if value in text] == []
    assert pipeline.scalar("SELECT count(*) FROM user_logins") == 0


FAIL_FIRST_TRIES = """
CREATE SEQUENCE tries;
CREATE FUNCTION fail_first_tries() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
    IF nextval('tries') <= {failures} THEN RAISE EXCEPTION 'injected' USING ERRCODE = '{sqlstate}'; END IF;
    RETURN NULL; END $$;
CREATE TRIGGER fail_first_tries AFTER INSERT ON user_logins FOR EACH STATEMENT EXECUTE FUNCTION fail_first_tries();
"""


@pytest.mark.parametrize("sqlstate", ["40001", "40P01"])  # serialization failure, deadlock detected
def test_a_deadlock_or_serialization_failure_is_tried_again_not_bisected(pipeline, sqlstate):
    """The first two transactions fail (a sequence counts the tries: it is not rolled back); the third
    commits the whole chunk: nothing fails alone."""
    messages = Messages.generate(20)
    with pipeline.postgres.connect() as conn:
        conn.execute(FAIL_FIRST_TRIES.format(failures=2, sqlstate=sqlstate))
        stored = store(conn, as_messages(messages.bodies), pipeline.keys)
        assert (len(stored.committed), stored.failed) == (20, [])
        assert conn.execute("SELECT last_value FROM tries").fetchone() == (3,)


def test_a_revoked_grant_fails_the_chunk_at_once_without_bisecting(pipeline):
    """INSERT revoked: no message is tried alone (each would be charged a failure); one transaction, then
    SystemicFailure naming the error and its SQLSTATE."""
    messages = Messages.generate(20)
    with pipeline.postgres.connect() as conn:
        conn.execute(FAIL_FIRST_TRIES.format(failures=1000, sqlstate="42501"))  # insufficient_privilege
        with pytest.raises(SystemicFailure, match=r"InsufficientPrivilege \(SQLSTATE 42501\)"):
            store(conn, as_messages(messages.bodies), pipeline.keys)
        assert conn.execute("SELECT last_value FROM tries").fetchone() == (1,)
