"""How many CPUs this process may really use: the container's limit, not the host's core count.

A 1-vCPU ECS task or a Kubernetes pod limited to one CPU still sees every core of its host in
os.cpu_count(); forking a build worker per host core there would only make them take turns. The limit is the
smallest of: the CPUs the process may be scheduled on (os.sched_getaffinity), the cgroup v2 `cpu.max` quota
of its cgroup and every parent, and the cgroup v1 CFS quota (cpu.cfs_quota_us / cpu.cfs_period_us). A
fractional quota rounds up: 1.5 CPUs can keep two processes partly busy.
"""

import math
import os
from pathlib import Path


def available_cpus(root: Path = Path("/"), affinity: int | None = None) -> int:
    """The CPUs this process may use, at least 1. `root` and `affinity` are for tests (a fake filesystem)."""
    if affinity is None:
        affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quotas = [*_cgroup_v2_quotas(root), *_cgroup_v1_quotas(root)]
    return max(1, min([affinity, *(math.ceil(q) for q in quotas)]))


def _cgroup_paths(root: Path) -> dict[str, str]:
    """The lines of /proc/self/cgroup as {controllers: path}; "" is cgroup v2's unified hierarchy."""
    try:
        lines = (root / "proc/self/cgroup").read_text().splitlines()
    except OSError:
        return {}
    paths = {}
    for line in lines:
        _, controllers, path = line.split(":", 2)
        paths[controllers] = path
    return paths


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _cgroup_v2_quotas(root: Path) -> list[float]:
    """`cpu.max` ("<quota> <period>" or "max <period>") of the process's cgroup and of each parent up to the
    mount: a parent's limit binds its children too."""
    path = _cgroup_paths(root).get("")
    if path is None:
        return []
    mount = root / "sys/fs/cgroup"
    folder, quotas = mount / path.lstrip("/"), []
    while True:
        quota, _, period = (_read(folder / "cpu.max") or "max").partition(" ")
        if quota != "max" and period:
            quotas.append(int(quota) / int(period))
        if folder == mount or mount not in folder.parents:
            return quotas
        folder = folder.parent


def _cgroup_v1_quotas(root: Path) -> list[float]:
    """The CFS quota of the cpu controller, where cgroup v1 mounts it. Inside a container the process's path
    in /proc/self/cgroup names the host's hierarchy while the mount shows the container's own cgroup, so
    both places are tried."""
    path = next((p for c, p in _cgroup_paths(root).items() if "cpu" in c.split(",")), None)
    if path is None:
        return []
    for mount in (root / "sys/fs/cgroup/cpu,cpuacct", root / "sys/fs/cgroup/cpu"):
        for folder in (mount / path.lstrip("/"), mount):
            quota, period = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
            if quota is not None and period:
                return [int(quota) / int(period)] if int(quota) > 0 else []
    return []
