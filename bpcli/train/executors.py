"""Who trains a sweep's variants: local worker processes (one per GPU for GPU variants, each
seeing only its own) or a Dask cluster (GPU variants on workers offering a GPU resource), behind
the few calls of concurrent.futures the sweep uses: submit, share, result, as_completed,
shutdown; and stop, at Ctrl-C. A worker that dies fails its own task alone, with
:class:`WorkerDied`, and the others go on."""

from __future__ import annotations

import collections
import threading
import time

from ..errors import InputError


class WorkerDied(Exception):
    """The process running a task ended before it answered: killed (``kill -9``, the kernel's
    out-of-memory killer), crashed, or lost with its machine. ``wall_s``: how long the task ran
    on it."""

    def __init__(self, message: str, wall_s: float = 0.0):
        super().__init__(message)
        self.wall_s = wall_s


def how_it_ended(exitcode: int | None) -> str:
    """A process's exit code in words: ``killed by signal 9 (SIGKILL)``, ``exited with code 3``."""
    import signal

    if exitcode is None:
        return "lost"
    if exitcode < 0:
        try:
            return f"killed by signal {-exitcode} ({signal.Signals(-exitcode).name})"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exited with code {exitcode} before it answered"


def local_executor(workers: int, gpus: list[str] | None = None) -> LocalExecutor:
    """Worker processes; with ``gpus`` (CUDA device ids), one worker per GPU, each seeing only
    its own (CUDA_VISIBLE_DEVICES, set before CuPy loads), so a GPU trains one variant at a time.
    Each variant sets its own threads in-process (bpcli.engine.threads.limit)."""
    return LocalExecutor(workers, gpus)


class _Worker:
    def __init__(self, process, conn):
        self.process, self.conn = process, conn
        self.task = None        # the Future it is computing, if any
        self.since = 0.0        # when it was given that task (perf_counter)


class LocalExecutor:
    """Worker processes (spawned), each computing one task at a time, behind concurrent.futures'
    submit, Future and shutdown.

    concurrent.futures' ProcessPoolExecutor is broken for good once one of its workers dies:
    every task fails with BrokenProcessPool, the other workers' included, and they are
    terminated. Here the task of a worker that dies (``kill -9``, the out-of-memory killer, a
    crash) fails alone with :class:`WorkerDied`, and a new process takes the dead one's place
    (and GPU) for the tasks still waiting. A thread watches the workers' pipes and exits.
    """

    def __init__(self, workers: int, gpus: list[str] | None = None):
        import multiprocessing as mp

        self._max_workers = min(workers, len(gpus)) if gpus else workers
        # one slot per worker: the GPU its process, and any that replaces it, sees
        self._slots = list(gpus[:self._max_workers]) if gpus else [None] * self._max_workers
        self._context = mp.get_context("spawn")
        self._workers: dict[int, _Worker] = {}
        self._waiting = collections.deque()     # (future, fn, args, kwargs)
        self._closing = False
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = self._context.Pipe(duplex=False)
        self._thread = threading.Thread(target=self._manage, name="bpcli-workers", daemon=True)
        self._thread.start()

    def submit(self, fn, *args, **kwargs):
        from concurrent.futures import Future

        future = Future()
        with self._lock:
            if self._closing:
                raise RuntimeError("cannot submit to a LocalExecutor after shutdown")
            self._waiting.append((future, fn, args, kwargs))
        self._wake()
        return future

    @staticmethod
    def result(future):
        """The task's answer; its exception, or WorkerDied where its process died."""
        return future.result()

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        """No more tasks; the waiting ones still run (unless ``cancel_futures``), then the workers
        end. ``wait``: return once they have."""
        with self._lock:
            self._closing = True
            if cancel_futures:
                while self._waiting:
                    self._waiting.popleft()[0].cancel()
        self._wake()
        if wait:
            self._thread.join()

    def stop(self, grace_s: float = 30.0) -> None:
        """Stop now, as at Ctrl-C: the waiting tasks are cancelled and each worker still busy is
        sent SIGTERM (a training variant then stops at a step and answers); a worker that has
        not ended after ``grace_s`` is killed."""
        with self._lock:
            self._closing = True
            while self._waiting:
                self._waiting.popleft()[0].cancel()
            busy = [w.process for w in self._workers.values() if w.task is not None]
        for process in busy:
            if process.is_alive():
                process.terminate()
        self._wake()
        self._thread.join(grace_s)   # the thread reads their answers meanwhile: none blocks on a pipe
        with self._lock:
            left = [w.process for w in self._workers.values()]
        for process in left:
            if process.is_alive():
                process.kill()

    # ------------------------------------------------------------ the thread that watches workers
    def _wake(self) -> None:
        try:
            self._wake_w.send_bytes(b"x")
        except OSError:   # the thread has ended and closed its end
            pass

    def _manage(self) -> None:
        from multiprocessing.connection import wait

        try:
            while True:
                with self._lock:
                    self._assign()
                    busy = any(w.task is not None for w in self._workers.values())
                    if self._closing and not self._waiting and not busy:
                        break
                    watched = {self._wake_r: None}
                    for slot, w in self._workers.items():
                        watched[w.conn] = watched[w.process.sentinel] = slot
                ready = wait(list(watched))
                with self._lock:
                    if self._wake_r in ready:
                        while self._wake_r.poll():
                            self._wake_r.recv_bytes()
                    for slot in {watched[r] for r in ready} - {None}:
                        self._collect(slot)
        finally:
            self._end_workers()

    def _assign(self) -> None:
        """Give each waiting task a worker: an idle one, or a new process in a free slot."""
        idle = [s for s, w in self._workers.items() if w.task is None]
        free = [s for s in range(len(self._slots)) if s not in self._workers]
        while self._waiting and (idle or free):
            future, fn, args, kwargs = self._waiting.popleft()
            if not future.set_running_or_notify_cancel():
                continue   # cancelled while it waited
            slot = idle.pop() if idle else self._start(free.pop(0))
            w = self._workers[slot]
            w.task, w.since = future, time.perf_counter()
            try:
                w.conn.send((fn, args, kwargs))
            except OSError:   # it died already: its sentinel says so, and the task fails with it
                pass

    def _start(self, slot: int) -> int:
        mine, theirs = self._context.Pipe()
        process = self._context.Process(target=serve, args=(theirs, self._slots[slot]),
                                        name=f"bpcli-worker-{slot}", daemon=True)
        process.start()
        theirs.close()   # so that its death reads as the end of the pipe here
        self._workers[slot] = _Worker(process, mine)
        return slot

    def _collect(self, slot: int) -> None:
        """Worker ``slot``'s pipe or process is ready: take its answer, or learn that it died."""
        w = self._workers[slot]
        try:
            while w.conn.poll():   # an answer first: one that answered, then ended, is fine
                ok, value = w.conn.recv()
                future, w.task = w.task, None
                if future is not None:
                    (future.set_result if ok else future.set_exception)(value)
            if w.process.is_alive():
                return
        except (EOFError, OSError):   # the pipe ended: the process did
            pass
        w.process.join()
        if w.task is not None:
            w.task.set_exception(WorkerDied(how_it_ended(w.process.exitcode),
                                            time.perf_counter() - w.since))
        w.conn.close()
        del self._workers[slot]   # a new process takes the slot if tasks still wait

    def _end_workers(self) -> None:
        with self._lock:
            workers = list(self._workers.values())
            self._workers.clear()
            self._wake_r.close()
        for w in workers:
            try:
                w.conn.send(None)   # "no more tasks"
            except OSError:
                pass
        for w in workers:
            w.process.join(10)
            if w.process.is_alive():
                w.process.kill()
                w.process.join()
            if w.task is not None and not w.task.done():
                w.task.set_exception(WorkerDied(how_it_ended(w.process.exitcode),
                                                time.perf_counter() - w.since))
            w.conn.close()


def serve(conn, gpu: str | None) -> None:
    """A worker process's life: with ``gpu``, see that GPU alone (CUDA_VISIBLE_DEVICES, set
    before anything here can load CuPy, which reads it once); then compute each task that comes
    down ``conn`` and send back (True, result) or (False, exception), until None or the pipe
    ends."""
    import os

    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)
    try:
        while True:
            task = conn.recv()
            if task is None:
                return
            fn, args, kwargs = task
            try:
                answer = (True, fn(*args, **kwargs))
            except BaseException as e:   # KeyboardInterrupt too: the client decides what it means
                answer = (False, e)
            try:
                conn.send(answer)
            except Exception as e:   # an answer that does not pickle
                conn.send((False, RuntimeError(f"{type(e).__name__}: {e}")))
    except (EOFError, KeyboardInterrupt):   # the client went away, or Ctrl-C while idle
        return


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

    @staticmethod
    def result(future):
        """The task's answer; its exception, or WorkerDied where every worker that tried it died
        (Dask's KilledWorker: it retries a task a lost worker held on others first)."""
        from dask.distributed import KilledWorker

        try:
            return future.result()
        except KilledWorker as e:
            raise WorkerDied(str(e)) from None

    def shutdown(self, wait=True, cancel_futures=False):
        self.client.close()

    def stop(self) -> None:
        """Stop now, as at Ctrl-C: this client goes, and with it the tasks it asked for."""
        self.client.close()


def as_completed(futures, executor):
    if isinstance(executor, DaskExecutor):
        from dask.distributed import as_completed

        return as_completed(futures)
    from concurrent.futures import as_completed

    return as_completed(futures)
