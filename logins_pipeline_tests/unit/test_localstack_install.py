"""LocalStack's venv is installed under a file lock: processes starting at once (the test suite's two, two
`logins-pipeline up`s) must not install into it together."""

import fcntl
import threading

from logins_pipeline.local.services import LOCALSTACK_REQUIREMENTS, LocalSQS


def test_an_install_waits_for_the_one_in_progress_then_finds_it_done(tmp_path):
    venv = tmp_path / "localstack-venv"
    venv.mkdir()
    sqs = LocalSQS(tmp_path, venv_dir=venv)
    with open(tmp_path / "localstack-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process is installing
        second = threading.Thread(target=sqs.ensure_installed)
        second.start()
        second.join(timeout=1)
        assert second.is_alive()  # it waits
        (venv / "logins-requirements.txt").write_text("\n".join(LOCALSTACK_REQUIREMENTS))  # the install ends
    second.join(timeout=10)
    assert not second.is_alive()  # and then has nothing left to do
