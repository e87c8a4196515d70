"""Headless Chromium from Debian's package (`make browser`), driven by Playwright: for the UI tests and
`make screenshot`. Playwright's own browser download (`playwright install`) is never used."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from logins_pipeline.local.services import LocalServiceError

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = Path("/usr/bin/chromium")
# No GPU, no sandbox (root), and nothing that calls out to Google's services: this machine's network is
# closed, and each refused connection would slow the page down.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def chromium_page(width: int = 1600, height: int = 1000) -> Iterator["Page"]:
    """A new page in a fresh headless Chromium (a new, empty profile every time)."""
    if not CHROMIUM.exists():
        raise LocalServiceError(f"{CHROMIUM} not found: install Debian's chromium (`make browser`)")
    from playwright.sync_api import sync_playwright  # a test/dev dependency, not the pipeline's

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            yield browser.new_page(viewport={"width": width, "height": height})
        finally:
            browser.close()


def open_lineage(page, ui_url: str, group: str, assets: list[str], timeout_ms: int = 60_000) -> None:
    """Open an asset group's lineage graph and wait until every asset in `assets` is drawn."""
    page.goto(f"{ui_url}/locations/logins_pipeline/asset-groups/{group}/lineage")
    for name in assets:
        # The first visible match: the same text may also sit in an element that stays hidden.
        page.get_by_text(name, exact=True).filter(visible=True).first.wait_for(timeout=timeout_ms)
