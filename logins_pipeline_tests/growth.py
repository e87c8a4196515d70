"""How a function's CPU time grows with its input: linear, or quadratic like a backtracking pattern."""

import time

# 8x the input, each step: about 8x the time when the cost is linear, 64x when quadratic. 30x leaves room for
# caches and a loaded machine, and is still half of quadratic.
QUADRATIC_LIKE = 30


def cpu_seconds(function, *args) -> float:
    """The least CPU time of three calls: CPU, not wall, time, so that other processes on the machine do
    not count, and the least, so that an interruption (a page fault storm, a collection) does not either."""
    times = []
    for _ in range(3):
        started = time.process_time()
        function(*args)
        times.append(time.process_time() - started)
    return min(times)


def growths(function, make_input, sizes: list[int]) -> list[float]:
    """How much longer `function` takes from each size to the next: about their ratio when its cost is
    linear, the square of it when quadratic. It stops at the first growth past QUADRATIC_LIKE, so that a
    quadratic function fails on small inputs instead of running for hours on the big ones."""
    found, before = [], max(cpu_seconds(function, make_input(sizes[0])), 1e-5)
    for size in sizes[1:]:
        after = cpu_seconds(function, make_input(size))
        found.append(after / before)
        if found[-1] >= QUADRATIC_LIKE:
            break
        before = after
    return found
