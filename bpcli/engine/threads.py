"""How many threads the engine's NumPy may use: BLAS and OpenMP pools, set in-process.

NumPy threads only its matrix products (BLAS); bpcli's rules are otherwise single-threaded.
On a small machine, and always on a shared one, extra BLAS threads cost more than they
give: they spin and wait for cores other processes hold (benchmarks/threads.py measures it,
and benchmarks/README.md has the figures the default comes from). And the thread count is
part of what makes a run reproducible: a BLAS sum split over more threads adds in another
order, so the same spec, data and seed give the same bits only at the same thread count.

:func:`limit` is threadpoolctl's ``threadpool_limits`` (the library reads and sets every
pool loaded in the process: OpenBLAS, MKL, BLIS, OpenMP), with bpcli's default and checks.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

from ..errors import InputError

# Measured on 2 cores (benchmarks/threads.py): one thread is as fast as two for every shipped
# spec on a quiet machine, and up to 1.22x faster when another process holds a core.
DEFAULT_THREADS = 1


def available() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def resolve(threads: int | None) -> int:
    """The thread count to use: ``threads`` (1 .. the cores available), or the default."""
    if threads is None:
        return DEFAULT_THREADS
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise InputError(f"must be a positive integer, got {threads!r}", path="--threads")
    return threads


@contextmanager
def limit(threads: int | None):
    """Run the body with BLAS and OpenMP pools limited to ``threads`` (default: the default);
    yields the count in force. The previous limits come back afterwards."""
    from threadpoolctl import threadpool_limits

    n = resolve(threads)
    with threadpool_limits(limits=n):
        yield n


def info() -> list[dict]:
    """The thread pools loaded in this process, as summary.json records them: library, API,
    version and thread count (threadpoolctl's ``threadpool_info``)."""
    from threadpoolctl import threadpool_info

    return [{"library": p.get("internal_api"), "api": p.get("user_api"),
             "version": p.get("version"), "threads": p.get("num_threads")}
            for p in threadpool_info()]
