"""`make chaos`: a scenario that raises is a row of the table marked as an error, the scenarios after it still
run, its traceback follows the table, and the exit status says it."""

from typing import cast

from logins_pipeline_tests.chaos import Count, Lab, Row, Scenario, report, run_scenarios


def broken(lab, trial: int) -> Count:
    raise RuntimeError("the fault was not injected")


def test_a_scenario_that_raises_is_an_error_row_and_hides_no_other(capsys):
    rows = run_scenarios(
        cast(Lab, None),  # these trials use no services
        {
            "clean": Scenario(lambda lab, trial: Count(), 2),
            "broken": Scenario(broken, 1),
            "after it": Scenario(lambda lab, trial: Count(lost=trial), 3),
        },
    )
    assert report(rows) == 1
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split() == ["fault", "point", "trials", "lost", "duplicated", "left", "in", "queue"]
    assert lines[1].split() == ["clean", "2", "0", "0", "0"]
    assert lines[2].split() == ["broken", "1", "ERROR:", "RuntimeError:", "the", "fault", "was", "not", "injected"]
    assert lines[3].split() == ["after", "it", "3", "3", "0", "0"]
    assert "Traceback" in err and 'raise RuntimeError("the fault was not injected")' in err


def test_the_exit_status_is_0_only_when_every_row_left_nothing():
    assert report({"clean": Row(2, Count())}) == 0
    assert report({"clean": Row(2, Count()), "duplicated": Row(1, Count(duplicated=1))}) == 1
