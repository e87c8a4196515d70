"""available_cpus: the container's CPU limit from cgroup files laid out in a temporary folder."""

from pathlib import Path

import pytest

from logins_pipeline.drain.cpus import available_cpus


def layout(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


V2_IN_A_CONTAINER = {"proc/self/cgroup": "0::/\n"}
V2_ON_A_HOST = {"proc/self/cgroup": "0::/system.slice/logins.service\n"}
V1 = {"proc/self/cgroup": "12:pids:/docker/abc\n4:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n"}


@pytest.mark.parametrize(
    "files, expected",
    [
        ({**V2_IN_A_CONTAINER, "sys/fs/cgroup/cpu.max": "100000 100000\n"}, 1),  # a 1-vCPU task on a 16-core host
        ({**V2_IN_A_CONTAINER, "sys/fs/cgroup/cpu.max": "150000 100000\n"}, 2),  # 1.5 CPUs round up
        ({**V2_IN_A_CONTAINER, "sys/fs/cgroup/cpu.max": "max 100000\n"}, 16),  # no limit: the affinity
        ({**V2_IN_A_CONTAINER}, 16),  # no cpu controller file at all
        (
            {
                **V2_ON_A_HOST,
                "sys/fs/cgroup/system.slice/logins.service/cpu.max": "max 100000\n",
                "sys/fs/cgroup/system.slice/cpu.max": "200000 100000\n",
            },
            2,
        ),  # a parent's limit binds
        (
            {
                **V1,
                "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "300000\n",
                "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n",
            },
            3,
        ),  # v1, the container's own mount
        (
            {
                **V1,
                "sys/fs/cgroup/cpu/docker/abc/cpu.cfs_quota_us": "50000\n",
                "sys/fs/cgroup/cpu/docker/abc/cpu.cfs_period_us": "100000\n",
            },
            1,
        ),  # v1, the host's view of the path
        (
            {
                **V1,
                "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "-1\n",
                "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n",
            },
            16,
        ),  # v1 without a quota
        ({}, 16),  # no /proc at all (not Linux): the affinity
    ],
)
def test_the_cpu_limit_of_the_process_cgroup(tmp_path, files, expected):
    assert available_cpus(layout(tmp_path, files), affinity=16) == expected


def test_the_affinity_binds_when_it_is_smaller_than_the_quota(tmp_path):
    root = layout(tmp_path, {**V2_IN_A_CONTAINER, "sys/fs/cgroup/cpu.max": "800000 100000\n"})
    assert available_cpus(root, affinity=3) == 3


def test_this_machine_gives_at_least_one():
    assert available_cpus() >= 1
