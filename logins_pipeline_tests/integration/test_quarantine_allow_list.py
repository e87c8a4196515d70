"""A renamed PII field (an app release that sends `deviceId`, `ip_address` or a nested address) leaves no
plaintext in Postgres: quarantine keeps only the allow-listed fields' text (core/quarantine.py)."""

import json

import pytest

from logins_pipeline.core.pii_keys import PiiKeys
from logins_pipeline.drain.ingest import drain

pytestmark = pytest.mark.integration

LOGIN = {"user_id": "u-renamed", "app_version": "2.3.0", "device_type": "android", "locale": "RU"}
RENAMED = {  # none shaped like an address or a device id, so that no redaction by shape can hide them
    "deviceId": "dev-7f3c-renamed",
    "ip_address": "gw7.example.net",
    "client": {"addr": "host-renamed-x", "port": 47113, "tags": ["tag-renamed-y"]},
}
VALUES = ("dev-7f3c-renamed", "gw7.example.net", "host-renamed-x", "47113", "tag-renamed-y")
ORIGINALS = ("198.51.100.77", "555-44-3210")  # the valid login's own: encrypted in the vault, nowhere in clear


def every_tables_text(pipeline) -> str:
    """Each row of each table of the database, in every schema of ours, as Postgres prints it."""
    tables = pipeline.query(
        "SELECT format('%%I.%%I', table_schema, table_name) FROM information_schema.tables"
        " WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')"
    )
    assert {"public.user_logins", "public.login_quarantine", "pii_vault.login_pii"} <= {t for (t,) in tables}
    return "\n".join(row for (table,) in tables for (row,) in pipeline.query(f"SELECT t::text FROM {table} t"))


def test_renamed_pii_fields_leave_no_plaintext_in_postgres(pipeline):
    pipeline.seed(
        [
            json.dumps({**LOGIN, **RENAMED}),  # no ip, no device_id: quarantined as missing_field
            json.dumps({**LOGIN, "ip": ORIGINALS[0], "device_id": ORIGINALS[1], **RENAMED}),  # a row
        ]
    )
    summary = drain(pipeline.sqs, pipeline.postgres, PiiKeys(pipeline.key, pipeline.vault_key))
    assert (summary.inserted, summary.quarantined, dict(summary.reasons)) == (1, 1, {"missing_field": 1})

    text = every_tables_text(pipeline)
    assert [value for value in VALUES + ORIGINALS if value in text] == []
    [(masked,)] = pipeline.query("SELECT masked_body FROM login_quarantine")
    assert json.loads(masked)["user_id"] == "u-renamed" and set(json.loads(masked)["client"]) == set(RENAMED["client"])
