"""A failpoint that holds a process says so on stderr first, so that a test acts on the hold, not on a timer."""

import os

from logins_pipeline.drain import failpoints
from logins_pipeline.drain.failpoints import VARIABLE, failpoint


def test_a_hold_is_announced_with_its_passage_and_pid(monkeypatch, capsys):
    monkeypatch.setenv(VARIABLE, "after_build@2:0,after_commit")
    failpoints.forget_passages()
    failpoint("after_build")  # the first passage: not the one held
    failpoint("after_build")
    failpoint("after_receive")  # not named: nothing happens
    assert capsys.readouterr().err.splitlines() == [
        f"failpoint after_build: holding 0 s (passage 2, pid {os.getpid()})"
    ]
