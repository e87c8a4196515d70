"""The Dagster column schema, derived from the pandera schema so the two cannot drift apart."""

import dagster as dg
import pandera.pandas as pa

from logins_pipeline.core.schema import MaskedLogin


def _column(name: str, column: pa.Column) -> dg.TableColumn:
    return dg.TableColumn(
        name=name,
        type=str(column.dtype),
        description=column.description,
        constraints=dg.TableColumnConstraints(
            nullable=column.nullable,
            unique=column.unique,
            other=[check.error or check.name for check in column.checks],
        ),
    )


def column_schema() -> dg.TableSchema:
    schema = MaskedLogin.to_schema()
    return dg.TableSchema(columns=[_column(name, column) for name, column in schema.columns.items()])
