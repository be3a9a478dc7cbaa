"""Who trains a sweep's variants: local worker processes (one per GPU for GPU variants, each
seeing only its own) or a Dask cluster (GPU variants on workers offering a GPU resource), behind
the few calls of concurrent.futures the sweep uses: submit, share, as_completed, shutdown."""

from __future__ import annotations

from ..errors import InputError


def local_executor(workers: int, gpus: list[str] | None = None):
    """Worker processes; with ``gpus`` (CUDA device ids), one worker per GPU, each seeing only
    its own (CUDA_VISIBLE_DEVICES, set before CuPy loads), so a GPU trains one variant at a time."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    context = mp.get_context("spawn")
    if not gpus:
        # each variant limits its own BLAS threads in-process (bpcli.engine.threads.limit)
        return ProcessPoolExecutor(max_workers=workers, mp_context=context)
    queue = context.Queue()
    for gpu in gpus:
        queue.put(gpu)
    return ProcessPoolExecutor(max_workers=min(workers, len(gpus)), mp_context=context,
                               initializer=take_a_gpu, initargs=(queue,))


def take_a_gpu(queue) -> None:
    """A worker process's start: claim one GPU id from ``queue`` and make it the only one this
    process sees (before CuPy is imported, which reads CUDA_VISIBLE_DEVICES once)."""
    import os

    os.environ["CUDA_VISIBLE_DEVICES"] = str(queue.get())


def local_gpus() -> list[str]:
    """The CUDA device ids this process may use, as CUDA_VISIBLE_DEVICES names them (or 0..n-1);
    InputError (path --device) when there is no GPU here."""
    import os

    from ..engine import backend

    try:
        backend.check("gpu")
    except InputError as e:
        raise InputError(e.message, path="--device") from None
    count = backend.gpu_count()
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [v.strip() for v in visible.split(",") if v.strip()] if visible else []
    return (ids or [str(i) for i in range(count)])[:count]


class DaskExecutor:
    """The few calls of concurrent.futures this module uses, sent to a Dask cluster."""

    def __init__(self, address: str):
        try:
            from dask.distributed import Client
        except ImportError:
            raise InputError("--executor dask needs Dask distributed: pip install 'bpcli[dask]'",
                             path="--executor") from None
        try:
            self.client = Client(address, timeout="10s")
        except (OSError, TimeoutError) as e:
            raise InputError(f"cannot reach the Dask scheduler at {address}: {e}",
                             path="--scheduler") from None

    def submit(self, fn, *args, gpu: bool = False, **kwargs):
        # a GPU variant takes a worker's GPU resource: one at a time on each GPU worker
        return self.client.submit(fn, *args, pure=False, resources={"GPU": 1} if gpu else None,
                                  **kwargs)

    def check_gpus(self) -> int:
        """How many GPUs the cluster's workers offer (their ``GPU`` resources); InputError when
        none does, as a GPU variant would then wait forever."""
        workers = self.client.scheduler_info()["workers"].values()
        gpus = sum(int(w.get("resources", {}).get("GPU", 0)) for w in workers)
        if gpus < 1:
            raise InputError("no worker of this Dask cluster offers a GPU: start one worker per "
                             "GPU, each seeing its own, e.g. CUDA_VISIBLE_DEVICES=0 dask worker "
                             "ADDRESS --nthreads 1 --resources GPU=1", path="--device")
        return gpus

    def share(self, value):
        """Send ``value`` once to every worker; a future that tasks receive in its place."""
        return self.client.scatter(value, broadcast=True)

    def shutdown(self, wait=True, cancel_futures=False):
        self.client.close()


def as_completed(futures, executor):
    if isinstance(executor, DaskExecutor):
        from dask.distributed import as_completed

        return as_completed(futures)
    from concurrent.futures import as_completed

    return as_completed(futures)
