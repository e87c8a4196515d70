"""Pure logic: no I/O, no Dagster. Everything here is unit-testable without services."""
