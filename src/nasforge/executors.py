"""Where evaluations run: in this process, in local worker processes, or as Ray tasks.

All three speak one small protocol: ``submit(key, job)`` and ``wait() -> [(key, Outcome)]``.
The study's process stays the only writer of the database; executors only compute.
A worker that dies mid-evaluation (killed, out of memory) yields an outcome with
``worker_died`` set, and the study retries it a bounded number of times.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor
from concurrent.futures import wait as wait_futures
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .errors import NasforgeError, TrialFailed
from .evaluators import Evaluation, Evaluator
from .spaces import genome_from_dict


@dataclass
class Job:
    genome: dict[str, Any]
    seed: int
    weights: Any = None  # the evaluator's weight source at submit time (TS-ENAS inheritance)
    until: int | None = None  # multi-fidelity: train up to this epoch
    resume: dict[str, Any] | None = None  # multi-fidelity: the training state to continue from


@dataclass
class Outcome:
    evaluation: Evaluation | None = None
    error: str | None = None
    worker_died: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def run_job(evaluator: Evaluator, job: Job) -> Outcome:
    """Evaluate one genome; a failure becomes data, so it crosses process boundaries safely.
    Gradients are on whatever the caller's mode (``nasforge.search`` called under
    ``torch.no_grad()`` would otherwise fail every candidate)."""
    if job.weights is not None:
        evaluator.weights = job.weights
    try:
        fidelity = {"until": job.until, "resume": job.resume} if job.until is not None else {}
        with torch.enable_grad():
            return Outcome(evaluation=evaluator.evaluate(genome_from_dict(job.genome), job.seed, **fidelity))
    except TrialFailed as exc:
        return Outcome(error=str(exc))
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # a candidate that raises must not end the search
        return Outcome(error=f"{type(exc).__name__}: {exc}")


def threads_per_worker(workers: int, requested: int | None) -> int:
    """Split the machine's cores between workers unless the user fixed the count."""
    return requested or max(1, (os.cpu_count() or 1) // max(1, workers))


class InProcessExecutor:
    """The default: one evaluation at a time, in the study's own process."""

    def __init__(self, evaluator: Evaluator, threads: int):
        self.evaluator, self.slots = evaluator, 1
        torch.set_num_threads(threads)
        self._queue: list[tuple[Any, Job]] = []

    def submit(self, key: Any, job: Job) -> None:
        self._queue.append((key, job))

    def wait(self) -> list[tuple[Any, Outcome]]:
        key, job = self._queue.pop(0)
        return [(key, run_job(self.evaluator, job))]

    def cancel_all(self) -> None:
        self._queue.clear()

    def close(self) -> None:
        pass


_WORKER_EVALUATOR: Evaluator | None = None


def _init_worker(evaluator: Evaluator, threads: int, search_pid: int, started: Any) -> None:
    global _WORKER_EVALUATOR
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the study's to handle: it cancels us
    torch.set_num_threads(threads)
    with started.get_lock():  # this worker's number: workers share the GPUs round-robin by it
        index, started.value = started.value, started.value + 1
    place = getattr(evaluator, "place", None)
    if place is not None:
        place(index)
    _WORKER_EVALUATOR = evaluator
    threading.Thread(target=_exit_with, args=(search_pid,), daemon=True, name="watch-search").start()


def _exit_with(search_pid: int, every: float = 0.5) -> None:
    """End this worker once the search process is gone, however it ended (even kill -9, which
    no handler sees): a worker's parent is the forkserver, so it watches the search itself."""
    while True:
        time.sleep(every)
        try:
            os.kill(search_pid, 0)
        except ProcessLookupError:
            os._exit(1)
        except PermissionError:  # the pid now belongs to another user's process: ours is gone
            os._exit(1)


def _worker_run(job: Job) -> Outcome:
    assert _WORKER_EVALUATOR is not None
    return run_job(_WORKER_EVALUATOR, job)


class ProcessExecutor:
    """``workers`` local processes; the task is sent to each once, at start."""

    def __init__(self, evaluator: Evaluator, workers: int, threads: int):
        self.evaluator, self.slots, self.threads = evaluator, workers, threads
        self._futures: dict[Future, tuple[Any, Job]] = {}
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        # forkserver: workers start clean (no copied torch threads or open database handles)
        context = multiprocessing.get_context("forkserver")
        return ProcessPoolExecutor(self.slots, mp_context=context, initializer=_init_worker,
                                   initargs=(self.evaluator, self.threads, os.getpid(), context.Value("i", 0)))

    def submit(self, key: Any, job: Job) -> None:
        self._futures[self._pool.submit(_worker_run, job)] = (key, job)

    def wait(self) -> list[tuple[Any, Outcome]]:
        done, _ = wait_futures(list(self._futures), return_when=FIRST_COMPLETED)
        results, broken = [], False
        for future in done:
            key, _job = self._futures.pop(future)
            try:
                results.append((key, future.result()))
            except BrokenProcessPool:
                broken = True
                results.append((key, Outcome(error="a worker process died during the evaluation", worker_died=True)))
        if broken:  # every evaluation still out was lost with the pool: report them all
            for future, (key, _job) in list(self._futures.items()):
                results.append((key, Outcome(error="lost when a worker process died", worker_died=True)))
            self._futures.clear()
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()
        return results

    def cancel_all(self) -> None:
        """Stop now: running evaluations are abandoned (the study records them as interrupted)."""
        processes = list((getattr(self._pool, "_processes", None) or {}).values())
        self._futures.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()

    def close(self) -> None:
        self._pool.shutdown(wait=True)


class RayExecutor:
    """Each evaluation is a Ray task; the evaluator (with the data) is put in the object store once."""

    def __init__(self, evaluator: Evaluator, address: str | None, cpus_per_task: float, gpus_per_task: float,
                 max_retries: int, threads: int):
        if address is None:  # a private local runtime: keep every Ray port on loopback
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        elif "RAY_AUTH_MODE" not in os.environ and (Path.home() / ".ray" / "auth_token").is_file():
            # `ray start` turns token authentication on when this token file exists and the mode is
            # unset, but ray.init(address=...) does not follow the same rule and is refused by that
            # cluster ("InvalidAuthToken"); joining by the same rule sends the token.
            os.environ["RAY_AUTH_MODE"] = "token"
        try:
            import ray
        except ImportError:
            raise NasforgeError("--executor ray needs Ray: pip install 'ray>=2.40'") from None
        self.ray = ray
        if not ray.is_initialized():
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False,
                         configure_logging=False, ignore_reinit_error=True)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise NasforgeError(f"cannot reach the Ray cluster at {address or 'a new local runtime'}: "
                                    f"{str(exc).splitlines()[0]}") from None
        total = ray.cluster_resources().get("CPU", 1)
        self.slots = max(1, int(total // max(cpus_per_task, 1e-9)))
        self._evaluator_ref = ray.put(evaluator)
        self._remote = ray.remote(_ray_run).options(num_cpus=cpus_per_task, num_gpus=gpus_per_task,
                                                     max_retries=max_retries)
        self.threads = threads
        self._refs: dict[Any, Any] = {}

    def submit(self, key: Any, job: Job) -> None:
        self._refs[self._remote.remote(self._evaluator_ref, job, self.threads)] = key

    def wait(self) -> list[tuple[Any, Outcome]]:
        ready, _ = self.ray.wait(list(self._refs), num_returns=1)
        results = []
        for ref in ready:
            key = self._refs.pop(ref)
            try:
                results.append((key, self.ray.get(ref)))
            except self.ray.exceptions.RayError as exc:  # worker died and Ray's retries ran out
                message = str(exc).strip().splitlines()[0][:300]
                results.append((key, Outcome(error=f"Ray task failed: {message}", worker_died=True)))
        return results

    def cancel_all(self) -> None:
        for ref in self._refs:
            self.ray.cancel(ref, force=True)
        self._refs.clear()

    def close(self) -> None:
        pass  # the Ray runtime stays up for the process; ray.shutdown() is the user's call


def _ray_run(evaluator: Evaluator, job: Job, threads: int) -> Outcome:
    torch.set_num_threads(threads)
    return run_job(evaluator, job)


def make_executor(config: Any, evaluator: Evaluator) -> InProcessExecutor | ProcessExecutor | RayExecutor:
    """The executor a run's settings ask for (``config.executor``, ``config.threads``)."""
    e = config.executor
    workers = e.workers
    if config.device.trials_per_gpu > 1 and hasattr(evaluator, "place"):  # K worker processes per GPU
        from .device import gpus_for

        workers = config.device.trials_per_gpu * max(1, gpus_for(config.device.name))
    kind = e.kind if e.kind != "auto" else ("in-process" if workers == 1 else "processes")
    if kind == "ray":
        threads = config.threads or max(1, int(e.cpus_per_task))
        return RayExecutor(evaluator, e.ray_address, e.cpus_per_task, e.gpus_per_task, e.retries, threads)
    if kind == "processes":
        return ProcessExecutor(evaluator, workers, threads_per_worker(workers, config.threads))
    return InProcessExecutor(evaluator, config.threads or 1)
