"""Run work items on this machine's processes or on a Ray cluster, for `synthesize` and
`transcribe --out`.

Both paths call the same worker function, ``work(item, cfg) -> row`` (an ``AudioError`` means
that item failed, with the error's one-line message), and yield one ``Outcome`` per item to the
caller, the driver, which alone writes the output: workers never touch it, so each item is
written once, by one process.

- This machine (``Executor(workers=N)``): a process pool (spawn), results in input order, at most
  two items per worker in flight. A worker that dies stops the run ("rerun to resume").
- Ray (``Executor(ray="auto" | ADDRESS)``): items go out as Ray tasks in batches, at most two
  batches per cluster CPU in flight (re-read as the cluster grows, so an autoscaler sees the
  demand). Results come back in completion order. A batch whose worker dies (killed, out of
  memory, node lost) is run again by Ray itself (``max_retries``); a batch that still fails is
  split into single items, so that one item that kills its worker each time (a file that crashes
  a decoder) costs only its own error line, never the whole job.

Resume lives in the output: ``read_jsonl`` returns the items already written (dropping a last
line torn by a killed driver), and the caller leaves them out of the next run.
"""

from __future__ import annotations

import json
import logging
import math
import multiprocessing as mp
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spokenqa.errors import AudioError, ConfigError, DataError

WorkFn = Callable[[Any, Mapping[str, Any]], dict[str, Any]]
WarmFn = Callable[[Mapping[str, Any]], None]

RAY_HINT = "pip install 'spokenqa[ray]'"
MAX_AUTO_BATCH = 8  # items per Ray task when --batch-size is not given (about a minute of one core for synthesize)
RAY_MAX_RETRIES = 3  # Ray reruns a batch whose worker died this many times before it is split
LOCAL_RAY_OBJECT_STORE = (
    512 * 1024**2
)  # tasks exchange text and numbers only; Ray's default takes 30% of RAM


@dataclass(frozen=True)
class Outcome:
    """One item's result: ``row`` to write, or ``error`` (one line); ``retried`` when it ran more
    than once (its batch's worker died and Ray ran the batch again, or the batch failed for good
    and was split into single items)."""

    item: Any
    row: dict[str, Any] | None
    error: str | None
    retried: bool = False


def run_item(work: WorkFn, item: Any, cfg: Mapping[str, Any]) -> Outcome:
    """``work(item, cfg)``, with an AudioError turned into that item's error."""
    try:
        return Outcome(item, work(item, cfg), None)
    except AudioError as exc:
        return Outcome(item, None, str(exc))


def import_ray() -> Any:
    """The ray module, or a one-line ConfigError naming the missing package."""
    try:
        import ray
    except ImportError:
        raise ConfigError(
            f"--ray needs the 'ray' package, which is not installed: {RAY_HINT}"
        ) from None
    return ray


@dataclass
class Executor:
    """Where the items run. ``ray=None``: ``workers`` processes of this machine (default 1).
    ``ray="auto"``: the Ray cluster at $RAY_ADDRESS, else a Ray started on this machine for the
    run with ``workers`` CPUs (default: all). ``ray=ADDRESS``: that cluster (``host:6379``, or
    ``ray://host:10001`` through Ray Client). A process that already called ``ray.init()`` keeps
    its connection. ``batch_size``: items per Ray task (default: a quarter of an even share per
    CPU, at most 8)."""

    workers: int | None = None
    ray: str | None = None
    batch_size: int | None = None
    max_retries: int = RAY_MAX_RETRIES
    cpus: int = field(default=0, init=False)  # processes or Ray CPUs, once the run has started
    where: str = field(default="", init=False)  # which Ray: its address, or "a local Ray"
    startup_s: float = field(default=0.0, init=False)  # connecting to (or starting) Ray
    _ray: Any = field(default=None, init=False, repr=False)  # the ray module once connected
    _owns_ray: bool = field(default=False, init=False, repr=False)  # this Executor connected

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def check(self) -> None:
        """Validate the settings and, for Ray, that it is installed: before any expensive step."""
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"--workers must be at least 1, got {self.workers}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ConfigError(f"--batch-size must be at least 1, got {self.batch_size}")
        if self.ray is None:
            if self.batch_size is not None:
                raise ConfigError("--batch-size applies to Ray tasks: use it with --ray")
            return
        ray = import_ray()
        if self.workers is not None and (
            ray.is_initialized() or (self.ray != "auto" or os.environ.get("RAY_ADDRESS"))
        ):
            raise ConfigError(
                "--workers sizes a Ray started on this machine (--ray auto without RAY_ADDRESS); "
                "on a running cluster its CPUs decide"
            )

    def describe(self) -> str:
        if self.ray is None:
            return f"{self.cpus} worker process(es) on this machine"
        return f"{self.cpus} Ray CPU(s) on {self.where} (start-up {self.startup_s:.1f} s)"

    def start(self) -> None:
        """Connect to Ray (or start a local one) now, so that a caller can keep Ray's start-up
        out of its items/s. Nothing to do locally; run() starts when the caller did not."""
        if self._ray is not None:
            return
        self.check()
        if self.ray is None:
            return
        t0 = time.perf_counter()
        ray = import_ray()
        self._owns_ray = self._connect(ray)
        self._ray = ray
        self.cpus = _ray_cpus(ray)
        self.startup_s = time.perf_counter() - t0

    def close(self) -> None:
        """Disconnect from Ray (stopping a Ray started for the run); the process keeps a Ray
        connection it had before."""
        if self._ray is not None and self._owns_ray:
            self._ray.shutdown()
        self._ray, self._owns_ray = None, False

    def run(
        self, items: Sequence[Any], work: WorkFn, warm: WarmFn, cfg: Mapping[str, Any]
    ) -> Iterator[Outcome]:
        """One Outcome per item (input order locally, completion order on Ray). ``warm(cfg)``
        loads models once per worker process; ``work`` and ``warm`` must be module-level
        functions (they travel to the workers by name)."""
        if not items:
            return
        self.start()
        if self.ray is None:
            yield from self._local(items, work, warm, cfg)
        else:
            yield from self._ray_loop(self._ray, items, work, warm, cfg)

    # ----------------------------------------------------------------------------------------
    # This machine

    def _local(
        self, items: Sequence[Any], work: WorkFn, warm: WarmFn, cfg: Mapping[str, Any]
    ) -> Iterator[Outcome]:
        workers = self.workers or 1
        self.cpus = workers
        if workers == 1:
            warm(cfg)
            for item in items:
                yield run_item(work, item, cfg)
            return
        # spawn: the parent may hold threads (tqdm, torch) that fork would copy in a bad state.
        # ProcessPoolExecutor (unlike multiprocessing.Pool) fails instead of hanging when a
        # worker dies. Results come back in input order, so the file's line order does not
        # depend on scheduling; at most 2 items per worker are in flight, so an interruption
        # loses little.
        ctx = mp.get_context("spawn")
        pool = ProcessPoolExecutor(
            workers, mp_context=ctx, initializer=_init_pool_worker, initargs=(warm, cfg)
        )
        pending: deque[Future] = deque()
        todo = iter(items)
        try:
            for item in todo:
                pending.append(pool.submit(run_item, work, item, cfg))
                if len(pending) >= 2 * workers:
                    break
            while pending:
                future = pending.popleft()
                try:
                    result = future.result()
                except BrokenProcessPool:
                    raise AudioError(
                        "a worker process stopped unexpectedly (killed, out of memory, or it could "
                        "not start); rerun to resume"
                    ) from None
                nxt = next(todo, None)
                if nxt is not None:
                    pending.append(pool.submit(run_item, work, nxt, cfg))
                yield result
        except BaseException:
            # Interrupted (Ctrl-C) or failed: stop the workers now rather than let them finish
            # the items they hold; those are redone on the next run.
            for future in pending:
                future.cancel()
            processes = list(getattr(pool, "_processes", {}).values())
            pool.shutdown(wait=False, cancel_futures=True)
            for proc in processes:
                proc.terminate()
            for proc in processes:
                proc.join(timeout=5)
            raise
        pool.shutdown(wait=True)

    # ----------------------------------------------------------------------------------------
    # Ray

    def _connect(self, ray: Any) -> bool:
        """Connect (or start a local Ray); True when this call did, so the run disconnects."""
        if ray.is_initialized():
            self.where = "the Ray this process joined"
            return False
        target = self.ray
        if target == "auto":
            target = os.environ.get("RAY_ADDRESS") or "local"
        # ERROR: Ray's start-up notices would break into the progress bar
        kwargs: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR}
        if target == "local":  # "local" makes Ray start a new one, never join another user's
            kwargs.update(
                num_cpus=self.workers,
                include_dashboard=False,
                object_store_memory=LOCAL_RAY_OBJECT_STORE,
            )
        try:
            ray.init(address=target, **kwargs)
        except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
            raise ConfigError(f"cannot connect to Ray at {target}: {_one_line(exc)}") from None
        self.where = "a local Ray" if target == "local" else f"Ray at {target}"
        return True

    def _ray_loop(
        self, ray: Any, items: Sequence[Any], work: WorkFn, warm: WarmFn, cfg: Mapping[str, Any]
    ) -> Iterator[Outcome]:
        # retry_exceptions=False: Ray reruns a task whose worker died; an exception raised by
        # the code itself would only happen again.
        task = ray.remote(num_cpus=1, max_retries=self.max_retries, retry_exceptions=False)(
            _run_batch
        )
        self.cpus = _ray_cpus(ray)
        size = self.batch_size or max(
            1, min(MAX_AUTO_BATCH, math.ceil(len(items) / (4 * self.cpus)))
        )
        # (items, rerun): rerun marks the single items of a batch that failed after its retries
        queue: deque[tuple[list[Any], bool]] = deque(
            (list(items[i : i + size]), False) for i in range(0, len(items), size)
        )
        pending: dict[Any, tuple[list[Any], bool]] = {}
        try:
            while queue or pending:
                self.cpus = _ray_cpus(ray)
                while queue and len(pending) < 2 * self.cpus:
                    batch, rerun = queue.popleft()
                    pending[task.remote(work, warm, dict(cfg), batch)] = (batch, rerun)
                (ref,), _ = ray.wait(list(pending), num_returns=1)
                batch, rerun = pending.pop(ref)
                try:
                    attempt, results = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    if len(batch) > 1:  # find the item that fails: one task each
                        queue.extendleft(([item], True) for item in reversed(batch))
                        continue
                    yield self._failed(ray, batch[0], exc)
                    continue
                for item, (row, error) in zip(batch, results):
                    yield Outcome(item, row, error, retried=rerun or attempt > 0)
        finally:
            for ref in pending:  # interrupted: do not leave the cluster busy with our batches
                ray.cancel(ref, force=True)

    def _failed(self, ray: Any, item: Any, exc: BaseException) -> Outcome:
        """The error of an item whose task raised (the code itself: not retried, as it would
        only raise again) or whose worker died on every try."""
        if isinstance(exc, ray.exceptions.RayTaskError):
            cause = getattr(exc, "cause", None) or exc
            return Outcome(item, None, f"{type(cause).__name__}: {_one_line(cause)}")
        return Outcome(
            item,
            None,
            f"its worker died {self.max_retries + 1} times ({type(exc).__name__}: {_one_line(exc)})",
            retried=True,
        )


def _init_pool_worker(warm: WarmFn, cfg: Mapping[str, Any]) -> None:
    import signal

    # Ctrl-C reaches the whole process group: let the parent handle it
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    warm(cfg)


def _run_batch(
    work: WorkFn, warm: WarmFn, cfg: Mapping[str, Any], batch: list[Any]
) -> tuple[int, list[tuple[dict[str, Any] | None, str | None]]]:
    """A Ray task: the batch's results and which attempt this is (0: the first run). Ray's
    public API does not give the attempt number; the core worker does, and it is what lets the
    driver count retried items."""
    import ray

    attempt = ray._private.worker.global_worker.core_worker.get_current_task_attempt_number()
    warm(cfg)
    return attempt, [(o.row, o.error) for o in (run_item(work, item, cfg) for item in batch)]


def _ray_cpus(ray: Any) -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] or type(exc).__name__


# --------------------------------------------------------------------------------------------
# Resumable JSONL output


def read_jsonl(
    out_path: Path, key: Callable[[dict[str, Any]], Any], what: str
) -> dict[Any, dict[str, Any]]:
    """Rows already in ``out_path`` by ``key(row)``. A last line cut short by an interruption is
    removed from the file; a bad line elsewhere is a DataError naming the file and line."""
    done: dict[Any, dict[str, Any]] = {}
    if not out_path.exists():
        return done
    good_end = 0
    try:
        raw = out_path.read_bytes()
    except OSError as exc:
        raise DataError(f"{out_path}: cannot read: {exc.strerror or exc}") from None
    pos = 0
    lineno = 0
    while pos < len(raw):
        nl = raw.find(b"\n", pos)
        end = len(raw) if nl < 0 else nl + 1
        lineno += 1
        try:
            row = json.loads(raw[pos:end])
            k = key(row)
            if nl < 0:
                raise ValueError("no newline")
        except (ValueError, KeyError, TypeError):
            if end == len(raw):  # torn last line: drop it
                break
            raise DataError(f"{out_path}:{lineno}: not a {what} line") from None
        done[k] = row
        good_end = end
        pos = end
    if good_end < len(raw):
        with open(out_path, "r+b") as fh:
            fh.truncate(good_end)
            fh.flush()
            os.fsync(fh.fileno())
    return done


def append_line(fh: Any, row: dict[str, Any]) -> None:
    """One JSON line, flushed and fsync'ed: a killed run loses only the items in flight."""
    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    fh.flush()
    os.fsync(fh.fileno())


@dataclass
class RunStats:
    """The counters every driver of an Executor keeps (synthesize and transcribe add their own)."""

    selected: int = 0
    skipped: int = 0
    written: int = 0
    failed: int = 0
    retried: int = 0
    audio_s: float = 0.0
    wall_s: float = 0.0  # from the first item sent out (Ray's start-up not included)
    startup_s: float = 0.0  # connecting to (or starting) Ray
    ran_on: str = ""


def drive(
    executor: Executor,
    todo: Sequence[Any],
    work: WorkFn,
    warm: WarmFn,
    cfg: Mapping[str, Any],
    out_path: Path,
    stats: RunStats,
    *,
    on_row: Callable[[dict[str, Any]], None],
    on_failure: Callable[[Outcome], tuple[dict[str, Any] | None, str]],
    unit: str,
    desc: str,
    progress: bool,
) -> None:
    """Run `todo` on `executor` and append each result to `out_path` as it arrives, so a killed
    run loses only the items in flight: the driver loop `synthesize` and `transcribe` share.

    `on_row(row)` adds a written row to the caller's own counters (audio seconds and the like);
    `on_failure(outcome)` gives the error line to append (or None to leave the item for a later
    run) and the one-line message for stderr. The clock starts after Ray is up, so `wall_s`
    gives items per second of work, not of start-up."""
    with executor:  # on Ray: disconnects at the end (stopping a Ray started for the run)
        if todo:
            executor.start()
        start = time.perf_counter()
        bar = progress_bar(len(todo), progress, unit, desc)
        try:
            with open(out_path, "a", encoding="utf-8") as fh:
                for outcome in executor.run(todo, work, warm, cfg):
                    stats.retried += outcome.retried
                    if outcome.row is None:
                        stats.failed += 1
                        error_row, message = on_failure(outcome)
                        if error_row is not None:
                            append_line(fh, error_row)
                        (bar.write(message, file=sys.stderr) if bar else print(message, file=sys.stderr))
                    else:
                        append_line(fh, outcome.row)
                        stats.written += 1
                        on_row(outcome.row)
                    if bar:
                        bar.update(1)
                        bar.set_postfix(audio_h=f"{stats.audio_s / 3600:.2f}", failed=stats.failed)
        finally:
            if bar:
                bar.close()
            stats.wall_s = time.perf_counter() - start
            stats.startup_s = executor.startup_s
            stats.ran_on = executor.describe() if executor.cpus else ""


def progress_bar(total: int, enabled: bool, unit: str, desc: str) -> Any:
    """A tqdm bar on stderr (items/s and ETA), or None when disabled or there is nothing to do."""
    if not enabled or total == 0:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, desc=desc, dynamic_ncols=True, smoothing=0.1)


__all__ = [
    "Executor",
    "Outcome",
    "RunStats",
    "append_line",
    "drive",
    "import_ray",
    "progress_bar",
    "read_jsonl",
    "run_item",
]
