import dagster as dg

from logins_pipeline.defs.logins import assets

ingest_logins_job = dg.define_asset_job(
    "ingest_logins_job",
    selection=dg.AssetSelection.assets(assets.ingest_logins),
    description="Drain the login queue into user_logins / login_quarantine, then run the table checks.",
)
