"""How many threads a step's work runs on: the engine's own pool of batch-slice workers, with
the BLAS and OpenMP pools held at one thread each.

NumPy threads only its matrix products (BLAS), and most of an imaging step is not matrix
products: batch norm, ReLU, pooling, padding, the im2col copies. So the engine threads the batch
itself. Work that goes sample by sample walks its batch in slices (``backend.batch_slices``, or
:func:`pieces` for work that is the same whatever the slicing), and :func:`run` hands the slices
of one operation to ``--threads N`` workers. NumPy releases the GIL inside its ufuncs,
reductions, copies and BLAS calls, so the workers compute at once while Python only hands out
slices. Each worker's BLAS calls run on one thread: two levels of threads would fight for cores.

**The same bits at every thread count.** Threads change who computes a slice, never what is
summed in which order:

- work without sums across samples (elementwise rules, pooling, a convolution's products, one
  gemm per sample) gives each sample the same bits whatever slice it sits in, so :func:`pieces`
  may cut it by the thread count;
- a sum across the batch (a weight gradient, batch norm's moments) is either made whole from
  per-sample terms, or made per slice of ``backend.batch_slices``, whose bounds come from the
  shapes alone, and the slices' partial sums are added in slice order, on the calling thread.

:func:`limit` sets both: threadpoolctl's ``threadpool_limits`` (every pool loaded in the process:
OpenBLAS, MKL, BLIS, OpenMP) at 1, and the engine's worker count at ``threads``.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from ..errors import InputError
from . import backend

# The default is every core this process may use (as PyTorch's is every physical core). Measured
# on 2 cores (benchmarks/threads.py, benchmarks/README.md#threads-every-core-by-default): 2
# threads train the imaging networks 1.6-1.7x as fast as 1 on a quiet machine and 1.3-1.4x as
# fast beside two busy processes; the small shipped specs share no work (SPLIT_BYTES) and run the
# same code at any count (the rule kept from the last round: a busy machine never makes a run
# more than 1.2x slower than one thread would). A sweep's variants default to 1 thread each: its
# --workers processes share the cores instead.

# Work on less than this runs whole on the calling thread. Handing slices out costs tens of
# microseconds, and on a busy machine a worker that took a slice may wait milliseconds for a
# core: with 256 KiB the small shipped specs ran up to 2.8x slower at 2 threads than at 1
# (lecture_cnn, batch 256, quiet), with 2 MiB image_cnn's one shared region made its step 1.4x
# slower beside two busy processes; with 4 MiB no spec shares work of less than about a
# millisecond, and the imaging networks keep their speed-up (benchmarks/threads.py).
SPLIT_BYTES = 4 << 20
# About how much a slice holds: pieces() cuts slices this size when there are more of them than
# workers, and batch norm's and a shared input's fixed slices are this size. 2 and 4 MiB gave
# the same step times on cnn128 (1x128x128, batch 32), 1 MiB 10% slower at 2 threads (more
# slices to hand out), 8 MiB 25% slower (too few slices to share).
PIECE_BYTES = 2 << 20

_workers = 1
_pool: ThreadPoolExecutor | None = None
_inside = threading.local()   # set in the pool's threads: a slice's own work never splits again


def available() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default() -> int:
    """The thread count when none is given: every core this process may use."""
    return available()


def resolve(threads: int | None) -> int:
    """The thread count to use: ``threads`` (a positive integer), or :func:`default`."""
    if threads is None:
        return default()
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise InputError(f"must be a positive integer, got {threads!r}", path="--threads")
    return threads


def workers() -> int:
    """The number of threads a step's slices run on now (1 outside :func:`limit`)."""
    return 1 if getattr(_inside, "yes", False) else _workers


@contextmanager
def limit(threads: int | None):
    """Run the body with ``threads`` slice workers (default: :func:`default`) and every BLAS and
    OpenMP pool at one thread; yields the count in force. The previous settings come back
    afterwards."""
    from threadpoolctl import threadpool_limits

    global _workers
    n = resolve(threads)
    before = _workers
    with threadpool_limits(limits=1):
        _workers = n
        try:
            yield n
        finally:
            _workers = before


def _mark():
    _inside.yes = True


def _executor(n: int) -> ThreadPoolExecutor:
    """The pool of helper threads (the calling thread is the n-th worker)."""
    global _pool
    if _pool is None or _pool._max_workers != n:
        if _pool is not None:
            _pool.shutdown(wait=True)
        _pool = ThreadPoolExecutor(n, thread_name_prefix="bpcli-slice", initializer=_mark)
    return _pool


def run(fn, slices) -> list:
    """``[fn(b) for b in slices]``, the calls spread over the workers; results in slice order.

    The calling thread is one of the workers: it and ``workers() - 1`` pool threads take the
    next slice as each finishes one (a worker slowed by another process takes fewer). The
    first exception raised by a call is raised here, once every worker has stopped."""
    n = workers()
    if n == 1 or len(slices) < 2:
        return [fn(b) for b in slices]
    results = [None] * len(slices)
    order = iter(range(len(slices)))
    lock = threading.Lock()
    failed: list[BaseException] = []

    def drain():
        while not failed:
            with lock:
                i = next(order, None)
            if i is None:
                return
            try:
                results[i] = fn(slices[i])
            except BaseException as e:  # noqa: BLE001 (re-raised below, on the calling thread)
                failed.append(e)
    helpers = [_executor(n - 1).submit(drain) for _ in range(min(n, len(slices)) - 1)]
    _inside.yes = True       # this thread's slices do not split again either
    try:
        drain()
    finally:
        _inside.yes = False
        for h in helpers:       # one not started yet has nothing left to do: never wait for it
            if not h.cancel():  # (on a busy machine its thread may not run for milliseconds)
                h.result()
    if failed:
        raise failed[0]
    return results


def pieces(x, sample_bytes: int) -> list[slice]:
    """Slices of ``x``'s first axis (the batch), each sample making ``sample_bytes``, for work
    whose every sample comes out the same whatever slice it is in: the whole batch with one
    worker, under :data:`SPLIT_BYTES` or on a GPU; else at least one slice a worker, and slices
    of about :data:`PIECE_BYTES` when there are more of those."""
    k, n = workers(), x.shape[0]
    total = n * sample_bytes
    if k == 1 or n < 2 or total < SPLIT_BYTES or backend.on_device(x):
        return [slice(0, n)]
    count = min(n, max(k, total // PIECE_BYTES))
    bounds = [n * i // count for i in range(count + 1)]
    return [slice(a, b) for a, b in zip(bounds, bounds[1:])]


def sum_in_order(parts):
    """The partial sums of fixed slices added in slice order, on the calling thread (a tuple of
    partial sums: each element so): the same bits however many workers made them."""
    total = parts[0]
    for p in parts[1:]:
        total = tuple(a + b for a, b in zip(total, p)) if isinstance(total, tuple) else total + p
    return total


def info() -> list[dict]:
    """The thread pools loaded in this process, as summary.json records them: library, API,
    version and thread count (threadpoolctl's ``threadpool_info``), and the engine's own slice
    workers (library ``bpcli``)."""
    from threadpoolctl import threadpool_info

    return [{"library": p.get("internal_api"), "api": p.get("user_api"),
             "version": p.get("version"), "threads": p.get("num_threads")}
            for p in threadpool_info()] + [
        {"library": "bpcli", "api": "batch slices", "version": None, "threads": workers()}]
