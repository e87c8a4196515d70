"""The Dagster column schema is derived from the pandera schema and matches it."""

import dagster as dg

from logins_pipeline.core.schema import COLUMNS, MaskedLogin
from logins_pipeline.defs.logins.column_schema import column_schema

EXPECTED = [
    "message_id",
    "user_id",
    "device_type",
    "masked_ip",
    "masked_device_id",
    "locale",
    "app_version",
    "create_date",
    "sent_at",
    "masking_key_id",
]


def columns() -> dict[str, dg.TableColumn]:
    return {c.name: c for c in column_schema().columns}


def test_is_a_table_schema():
    assert isinstance(column_schema(), dg.TableSchema)


def test_columns_in_order():
    assert [c.name for c in column_schema().columns] == COLUMNS == list(MaskedLogin.to_schema().columns) == EXPECTED


def test_only_locale_nullable():
    assert [name for name, c in columns().items() if c.constraints.nullable] == ["locale"]


def test_only_message_id_unique():
    assert [name for name, c in columns().items() if c.constraints.unique] == ["message_id"]


def test_descriptions_and_types():
    for name, column in columns().items():
        assert column.description, name
        assert column.type, name
    assert columns()["app_version"].type == "int64"


def test_checks_listed():
    assert columns()["masked_ip"].constraints.other
    assert columns()["user_id"].constraints.other
