"""`make dev` runs `dg dev`: the UI shows the logins lineage, and a SIGTERM to its process group, or Ctrl-C
(SIGINT to the group), stops every process it started: the webserver, the daemon and the code servers."""

import contextlib
import os
import signal
import subprocess

import psutil
import pytest

from logins_pipeline.defs.logins.analytics import daily_analytics
from logins_pipeline.local.dagster_ui import DagsterUI
from logins_pipeline.local.services import free_port
from logins_pipeline_tests.conftest import REPO

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STOP_WITHIN_S = 60


def make_dev(port: int) -> list[str]:
    """`make dev` on this test's services: its recipe as written, without the `up` before it (-o) and with
    the environment of the test (LOCAL_ENV=true) instead of that of `logins-pipeline up`."""
    return ["make", "--no-print-directory", "-o", "up", "dev", f"UI_PORT={port}", "LOCAL_ENV=true"]


def terminate_group(make: subprocess.Popen) -> None:
    os.killpg(make.pid, signal.SIGTERM)


def ctrl_c(make: subprocess.Popen) -> None:
    os.killpg(make.pid, signal.SIGINT)  # what the terminal sends to its foreground process group


def terminate_make(make: subprocess.Popen) -> None:
    make.terminate()  # make passes a SIGTERM on to the recipe's process


@contextlib.contextmanager
def children_with_default_stop_signals():
    """Children start with SIGINT and SIGTERM at their defaults, as a terminal's foreground job does. Started in
    the background of a non-interactive shell (as a CI runner may start the suite), this process ignores SIGINT,
    and the first in-process Dagster run here maps SIGTERM to SIGINT's handler (dagster's
    `setup_interrupt_handlers`), so it then ignores SIGTERM too. Children inherit what is ignored, and make keeps
    an ignored signal ignored: `make dev` could then not be stopped however it is written. A handler, unlike
    SIG_IGN, is reset to the default at exec."""
    previous = {sig: signal.signal(sig, signal.default_int_handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@pytest.mark.parametrize("stop", [terminate_group, ctrl_c, terminate_make])
def test_make_dev_shows_the_lineage_and_stops_everything_it_started(pipeline, tmp_path, stop):
    port = free_port()
    with open(tmp_path / "dev.log", "wb") as log, children_with_default_stop_signals():
        dev = subprocess.Popen(
            make_dev(port),
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        ui = DagsterUI(f"http://127.0.0.1:{port}")
        ui.wait_ready([dev], timeout=180)
        assert ui.lineage() == {
            "raw_login_messages": set(),
            "masked_logins": {"raw_login_messages"},
            "user_logins": {"masked_logins"},
            "login_quarantine": {"masked_logins"},
            "logins_retention": set(),  # the maintenance group's retention pass: no data dependency
            **{key.to_user_string(): {"user_logins"} for key in daily_analytics.keys},
        }
        started = [psutil.Process(dev.pid), *psutil.Process(dev.pid).children(recursive=True)]
        names = " ".join(" ".join(p.cmdline()) for p in started)
        assert "dagster_webserver" in names and "dagster._daemon" in names and "grpc" in names, names

        stop(dev)
        _, alive = psutil.wait_procs(started, timeout=STOP_WITHIN_S)
        assert [" ".join(p.cmdline()) for p in alive] == []
    finally:
        with contextlib.suppress(ProcessLookupError):  # whatever is left of the group: nothing, if it passed
            os.killpg(dev.pid, signal.SIGKILL)
