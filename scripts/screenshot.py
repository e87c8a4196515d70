"""`make screenshot`: the asset lineage in the Dagster UI on the local services, saved as a PNG.

Run with the local services' environment (`eval "$(logins-pipeline env)"`, which the Makefile does): starts
a Dagster webserver on a free loopback port against them, opens the lineage of the `logins` asset group in
headless Chromium and saves what it shows.
"""

import argparse
import os
import time
from pathlib import Path

from logins_pipeline.defs.logins.analytics import daily_analytics
from logins_pipeline.defs.logins.assets import GROUP, ingest_logins
from logins_pipeline.local.browser import chromium_page, open_lineage
from logins_pipeline.local.dagster_ui import dagster_ui

REPO = Path(__file__).resolve().parents[1]
SETTLE_S = 2  # the graph pans and zooms to fit once it has been laid out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="PNG file to write, e.g. docs/lineage.png")
    parser.add_argument("--width", type=int, default=1600)
    parser.add_argument("--height", type=int, default=1200)
    args = parser.parse_args()

    assets = [key.to_user_string() for key in (*ingest_logins.keys, *daily_analytics.keys)]
    with dagster_ui(REPO / "workspace.yaml", dict(os.environ)) as ui, chromium_page(args.width, args.height) as page:
        ui.dismiss_onboarding()
        open_lineage(page, ui.url, GROUP, assets)
        time.sleep(SETTLE_S)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(args.output))
    print(f"wrote {args.output} ({', '.join(assets)})")


if __name__ == "__main__":
    main()
