"""Hostile input through a real Dagster run: PII in every field, in field names, in bodies that do not
parse; then a failure whose database error quotes a row. No plaintext ip or device_id may reach the logs,
the console, DAGSTER_HOME (run and event storage, compute logs), asset metadata, the stored error, or
login_quarantine. (user_logins is not searched: an app that puts an address into user_id gets it stored
there as its user id; docs/privacy.md says so.)"""

import json
import logging

import dagster as dg
import pytest

from logins_pipeline.cli.run import run_ingest_job
from logins_pipeline.drain.isolation import MAX_FAILED_ALONE

pytestmark = pytest.mark.integration

IPS = ["203.0.113.77", "2001:db8:85a3::8a2e:370:7334"]
SHAPED_DEVICE_ID = "123-45-6789"
FREE_FORM_DEVICE_ID = "dev-Zq9-hostile"  # not shaped like the apps' ids: only its own field marks it as PII
PII = [*IPS, "2001:0DB8:85A3:0000:0000:8A2E:0370:7334", SHAPED_DEVICE_ID, FREE_FORM_DEVICE_ID]


def event(**changes) -> dict:
    return {
        "user_id": "u-1",
        "app_version": "1.0.0",
        "device_type": "ios",
        "ip": IPS[0],
        "locale": "RU",
        "device_id": FREE_FORM_DEVICE_ID,
        **changes,
    }


HOSTILE_BODIES = [
    # PII in every field: a valid row (nothing but its tokens reaches any sink but user_logins.user_id)
    json.dumps(event(user_id=IPS[1], device_type=SHAPED_DEVICE_ID, locale=FREE_FORM_DEVICE_ID)),
    # ... and rejected: every field, and field names, repeat the message's own PII
    json.dumps(
        event(
            user_id=IPS[0],
            app_version=IPS[0],
            device_type=FREE_FORM_DEVICE_ID,
            locale=IPS[1],
            **{IPS[0]: FREE_FORM_DEVICE_ID, FREE_FORM_DEVICE_ID: IPS[0], "note": PII},
        )
    ),
    json.dumps({"foo": IPS[0], "bar": SHAPED_DEVICE_ID, IPS[1]: "field name"}),  # the sample's wrong type
    f"not json {IPS[0]} {FREE_FORM_DEVICE_ID}",
    json.dumps(f"{IPS[1]} {SHAPED_DEVICE_ID}"),
    json.dumps(event(ip=IPS[0] + "x", device_id=SHAPED_DEVICE_ID)),
    json.dumps(event(ip="2001:0DB8:85A3:0000:0000:8A2E:0370:7334", locale=IPS[0] * 3)),
    json.dumps(event(user_id="a\x00" + IPS[0], ip=IPS[1])),
    json.dumps(event(meta={"Device_ID": FREE_FORM_DEVICE_ID, "IP": [IPS[1]]}, app_version=None)),
    json.dumps(event(padding="x" * 300_000, locale=IPS[0])),
    f'{{"ip": "{IPS[0]}", "ip": "{IPS[1]}"}}',
    json.dumps(
        event(ip=IPS[1], device_id=f"  {FREE_FORM_DEVICE_ID}  ", user_id=FREE_FORM_DEVICE_ID, app_version="1.2.3.4")
    ),
]
# A database error that quotes the whole row (whose user_id is an address) fails the next run.
QUOTING_FAILURE = """
CREATE FUNCTION quote_row() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'rejected %', NEW; END $$;
CREATE TRIGGER quote_row BEFORE INSERT ON user_logins FOR EACH ROW EXECUTE FUNCTION quote_row();
"""


def leaks(text: str) -> list[str]:
    return [value for value in PII if value.lower() in text.lower()]


def test_hostile_input_leaves_no_plaintext_pii_anywhere(pipeline, instance, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    pipeline.seed(HOSTILE_BODIES[:9])
    pipeline.seed(HOSTILE_BODIES[9:])

    passed = run_ingest_job(instance=instance)
    assert passed.success, passed.error
    assert passed.metadata["inserted"] == 1 and passed.metadata["quarantined"] == len(HOSTILE_BODIES) - 1

    with pipeline.postgres.connect() as conn:
        conn.execute(QUOTING_FAILURE)
    # More messages than may fail alone (isolation.py): the fault is the table's, so the run fails.
    pipeline.seed([json.dumps(event(user_id=IPS[0])) for _ in range(MAX_FAILED_ALONE + 1)])
    failed = run_ingest_job(instance=instance)
    assert not failed.success and "rejected ([redacted]," in failed.error

    quarantine = "\n".join(row[0] for row in pipeline.query("SELECT q::text FROM login_quarantine q"))
    assert quarantine.count("\n") == len(HOSTILE_BODIES) - 2
    events = [record for run in (passed, failed) for record in instance.all_logs(run.run_id)]
    assert any(r.dagster_event and r.dagster_event.is_step_failure for r in events)
    materializations = instance.fetch_materializations(dg.AssetKey("user_logins"), limit=10).records
    captured = capfd.readouterr()
    stored = "\n".join(
        p.read_bytes().decode("utf-8", "replace") for p in pipeline.dagster_home.rglob("*") if p.is_file()
    )
    sinks = {
        "python logging": caplog.text,
        "stdout/stderr": captured.out + captured.err,
        "DAGSTER_HOME": stored,
        "event log": repr(events),
        "asset metadata": repr(materializations) + repr(passed.metadata),
        "run errors": failed.error,
        "login_quarantine": quarantine,
    }
    assert "[redacted]" in sinks["stdout/stderr"] and "[redacted]" in sinks["event log"]  # the failure, redacted
    assert "drained 12 messages" in sinks["stdout/stderr"] and "botocore" in sinks["python logging"]
    assert {sink: leaks(text) for sink, text in sinks.items() if leaks(text)} == {}
