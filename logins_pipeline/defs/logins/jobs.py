import dagster as dg

from logins_pipeline.defs.logins import assets

ingest_logins_job = dg.define_asset_job(
    "ingest_logins_job",
    selection=dg.AssetSelection.assets(assets.ingest_logins),
    description="Drain the login queue into user_logins / login_quarantine, then run the table checks.",
    # The project's console logger (JSON lines with LOGINS_LOG_FORMAT=json): a run whose config names no logger
    # gets Dagster's text one instead, whatever the Definitions' loggers.
    config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
)
