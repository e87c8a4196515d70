"""The Dagster UI as people use it, in headless Chromium (Debian's, driven by Playwright): the lineage page
shows the four ingest assets and the five daily analytics downstream of user_logins, and its Materialize
button drains the queue."""

import json
import re

import pytest

from logins_pipeline.defs.logins.analytics import daily_analytics
from logins_pipeline.defs.logins.assets import GROUP, ingest_logins
from logins_pipeline.local.browser import chromium_page, open_lineage
from logins_pipeline_tests.conftest import sample_events

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.slow]

ASSETS = [key.to_user_string() for key in ingest_logins.keys]
ANALYTICS = [key.to_user_string() for key in daily_analytics.keys]
EDGE_STROKE = "var(--color-lineage-edge)"  # how Dagster 1.13 draws a lineage edge
LAUNCHED = re.compile(r"Launched run ([0-9a-f]{8})")
PLOTTED = ("received", "inserted", "quarantined", "messages_per_second", "lag_seconds")
# Each metadata plot is a <canvas>; its title is the text of its nearest ancestor that has any.
PLOT_TITLES = """() => Array.from(document.querySelectorAll("canvas")).map(canvas => {
    let box = canvas;
    while (box && !box.textContent.trim()) box = box.parentElement;
    return box ? box.textContent.trim() : null;
})"""


@pytest.fixture
def page():
    with chromium_page() as new_page:
        yield new_page


def test_the_lineage_page_shows_the_assets_and_their_edges(webserver, page):
    open_lineage(page, webserver.url, GROUP, ASSETS + ANALYTICS)
    for name in ASSETS + ANALYTICS:
        assert page.get_by_text(name, exact=True).first.is_visible()
    # One drawn edge per dependency: raw -> masked, masked -> user_logins, masked -> login_quarantine, and
    # user_logins -> each of the five analytics.
    edges = page.locator(f'svg path[stroke="{EDGE_STROKE}"]')
    edges.nth(7).wait_for(state="attached")
    assert edges.count() == 3 + len(ANALYTICS)
    assert page.get_by_role("button", name="Materialize all").is_visible()


def launched_run_id(page) -> str:
    """The run id of the "Launched run 1a2b3c4d  View" toast: its short id, completed from its View link."""
    toast = page.get_by_text(LAUNCHED)
    toast.wait_for(timeout=30_000)
    launched = LAUNCHED.search(toast.inner_text())
    assert launched is not None
    short_id = launched.group(1)
    return page.locator(f'a[href^="/runs/{short_id}"]').first.get_attribute("href").rsplit("/", 1)[1]


def open_ingest_job(page, ui_url: str) -> None:
    """The asset graph of ingest_logins_job: its Materialize all drains the queue (the group's would ask for
    the analytics' partitions too)."""
    page.goto(f"{ui_url}/locations/logins_pipeline/jobs/ingest_logins_job")
    page.get_by_text("View 4 assets").wait_for(timeout=60_000)  # the graph draws only the nodes in view
    # The source of the graph: the page does not always zoom to fit, and draws only the nodes in view.
    page.get_by_text("raw_login_messages", exact=True).filter(visible=True).first.wait_for(timeout=60_000)


def test_materialize_all_in_the_ui_runs_to_success(pipeline, webserver, page):
    pipeline.seed([json.dumps(event) for event in sample_events()])
    open_ingest_job(page, webserver.url)
    page.get_by_role("button", name="Materialize all").click()
    run_id = launched_run_id(page)

    page.goto(f"{webserver.url}/runs/{run_id}")  # where the toast's "View" leads
    assert webserver.wait_for_run(run_id, timeout=120) == "SUCCESS"
    page.get_by_text("Success", exact=True).first.wait_for(timeout=30_000)  # the run page's status tag
    assert pipeline.scalar("SELECT count(*) FROM user_logins") == 99
    assert pipeline.scalar("SELECT count(*) FROM login_quarantine") == 1

    # The materialization's numbers are plotted over time in the asset's sidebar, one chart per number.
    # (Only user_logins is waited for: once materialized, the nodes grow, and the graph draws only what is in
    # view, which need not be all nine.)
    open_lineage(page, webserver.url, GROUP, ["user_logins"])
    page.get_by_text("user_logins", exact=True).first.click()
    page.get_by_text("Metadata plots").first.wait_for(timeout=30_000)
    page.locator("canvas").nth(len(PLOTTED) - 1).wait_for(state="attached", timeout=30_000)
    assert set(PLOTTED) <= set(page.evaluate(PLOT_TITLES))
