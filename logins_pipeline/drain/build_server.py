"""What the build workers' forkserver imports before it forks any (pipeline.py preloads this module, and
nothing else imports it): the batch code (pandas, pandera...), once, and no re-run of the run's main module
in each worker.

multiprocessing starts a forkserver's child by running the parent's __main__ again in it (as
__mp_main__), so that objects pickled by reference to __main__ resolve there. A build worker gets nothing
from __main__ (it calls pipeline._build_in_worker), and a run's main can be heavy: `logins-pipeline`
imports the whole command line, a benchmark script the AWS-like proxy, seconds per worker and per run. This
forkserver forks build workers only, so its children skip that step.
"""

from multiprocessing import spawn

from logins_pipeline.drain import pipeline  # noqa: F401 (imported here once, inherited by every worker)


def _skip_main(main: str) -> None:
    """A build worker needs nothing of the run's __main__ (`main`: its module name or path)."""


spawn._fixup_main_from_path = _skip_main  # type: ignore[attr-defined]  # private: not in typeshed
spawn._fixup_main_from_name = _skip_main  # type: ignore[attr-defined]
