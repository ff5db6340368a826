"""`farm.Executor`: a `concurrent.futures.Executor` whose calls run on farm's Python workers.

- ``submit(fn, *args, **kwargs)`` is one job of kind ``python`` with one shard of one item.
- ``map(fn, *iterables, timeout=None, chunksize=1)`` is ONE job whose shards are chunks of
  `chunksize` items; it yields lazily and in order as the shards' outputs arrive on the job's
  watch, and reads what the watch did not carry from the job's result at the end (also when
  the master dropped the watch for falling behind, or shards ahead of a slow one pass
  `MAP_PENDING_BYTES`). `shutdown(wait=True)` waits for every map's job to end, read or not.
- With no master, it starts a local farm: a master in this process (`_native.start_master`)
  and one supervisor of `workers` Python worker processes (``python -m farm worker``), stopped
  on `shutdown` and at exit: a drop-in for ``ProcessPoolExecutor(max_workers=workers)``.

The function is pickled with cloudpickle (by value from ``__main__`` and from local modules
that are not installed) and uploaded once to the master's module store, named by its
sha256 (again when a submit finds the master lost it); a job carries the client's
environment as `requires`, so the master hands its shards only to workers on the same Python
and cloudpickle.
"""

from __future__ import annotations

import atexit
import collections
import concurrent.futures
import itertools
import os
import queue
import secrets
import subprocess
import sys
import threading
import time
import weakref
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from . import _native, _pickling
from .client import FINAL_STATES, Client, Job, JobFailed

#: Threads that wait for `submit` jobs to end.
WAITERS = 32

#: Shard outputs a `map` reads ahead of its consumer: at most this many, and past the first,
#: at most this many bytes of output lines.
MAP_READ_AHEAD = 64
MAP_READ_AHEAD_BYTES = 16 << 20

#: Bytes of shard outputs a `map` holds that arrived ahead of the one it waits for (the watch
#: carries shards as they end, out of order). Past it, the map stops reading the watch and
#: reads the rest in order from the job's stored result once the job ends.
MAP_PENDING_BYTES = 64 << 20


class _Buffer:
    """A FIFO bounded by count and by bytes (one item is always let in, whatever its size)."""

    def __init__(self, count: int, size: int):
        self._items: "collections.deque" = collections.deque()
        self._bytes = 0
        self._count, self._size = count, size
        self._cond = threading.Condition()

    def put(self, item: Any, nbytes: int, stop: threading.Event) -> bool:
        """Waits for room; False when `stop` was set first."""
        with self._cond:
            while self._items and (
                len(self._items) >= self._count or self._bytes + nbytes > self._size
            ):
                if stop.is_set():
                    return False
                self._cond.wait(0.1)
            self._items.append((item, nbytes))
            self._bytes += nbytes
            self._cond.notify_all()
            return True

    def get(self, timeout: Optional[float]) -> Any:
        """The oldest item; raises queue.Empty after `timeout` seconds."""
        with self._cond:
            if not self._items:
                self._cond.wait(timeout)
                if not self._items:
                    raise queue.Empty
            item, nbytes = self._items.popleft()
            self._bytes -= nbytes
            self._cond.notify_all()
            return item


class RemoteError(_native.FarmError):
    """An exception raised on a worker that could not be brought back as itself (its class
    does not pickle, or is not importable here): its type name, message and remote traceback."""

    def __init__(self, type_name: str, message: str, traceback: str):
        super().__init__(f"{type_name}: {message}" if message else type_name)
        self.code = "REMOTE"
        self.type_name = type_name
        self.message = message
        self.traceback = traceback
        if traceback:
            self.__cause__ = _pickling.RemoteTraceback(traceback)


class ShardFailed(JobFailed):
    """The job of a call failed as a whole: its shard failed past its retries (a timeout, a
    worker that died too often, a function that cannot be loaded there) or was cancelled."""


def _decode(lines: Iterable[str]) -> List[Tuple[bool, Any]]:
    """The outcomes of output lines, in order (a line carries a chunk's, or one item's)."""
    out: List[Tuple[bool, Any]] = []
    for line in lines:
        out.extend(_pickling.decode_line(line, RemoteError))
    return out


def _lines(output: Any) -> Optional[List[str]]:
    """The lines of a shard's output as the watch carries it, or None when it carries none."""
    if isinstance(output, dict):
        output = output.get("lines", output.get("Lines"))
    if isinstance(output, list) and all(isinstance(x, str) for x in output):
        return output
    return None


class _LocalFarm:
    """A master in this process and a supervisor of Python worker processes."""

    def __init__(self, processes: int, threads: int):
        self.token = secrets.token_hex(16)
        self.master = _native.start_master("127.0.0.1:0", token=self.token)
        self.url = self.master.url
        env = dict(os.environ)
        env["FARM_TOKEN"] = self.token
        cmd = [
            sys.executable, "-m", "farm", "worker",
            "--master", self.url,
            "--processes", str(processes),
            "--threads", str(threads),
            "--allow-python",
            "--exit-on-disconnect",
            "--name", f"local-{os.getpid()}",
        ]
        self.supervisor = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL)
        self._stopped = False
        self._lock = threading.Lock()
        atexit.register(self.stop)

    def stop(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        if self.supervisor.poll() is None:
            self.supervisor.terminate()
            try:
                self.supervisor.wait(10)
            except subprocess.TimeoutExpired:
                self.supervisor.kill()
                self.supervisor.wait()
        self.master.stop()


class Executor(concurrent.futures.Executor):
    """Runs calls on farm's Python workers; see the module docs.

    ``Executor()`` starts a local farm of `workers` processes (default: the CPU count) of
    `threads` threads; ``Executor("http://master:7070", token=...)`` uses a cluster.
    `retries` is how often a failed shard runs again (a worker that died, a timeout); `timeout`
    (seconds) stops a shard that runs longer; `max_pickle_bytes` refuses a function that
    pickles larger, naming its largest captured globals."""

    def __init__(
        self,
        master: Optional[str] = None,
        *,
        workers: Optional[int] = None,
        threads: int = 1,
        token: Optional[str] = None,
        tls_ca: Optional[str] = None,
        initializer: Optional[Callable] = None,
        initargs: Sequence = (),
        max_pickle_bytes: int = _pickling.MAX_PICKLE_BYTES,
        retries: int = 3,
        timeout: Optional[float] = None,
        max_crashes: Optional[int] = None,
        priority: int = 0,
    ):
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be callable")
        if workers is not None and workers < 1:
            raise ValueError("workers must be at least 1")
        if threads < 1:
            raise ValueError("threads must be at least 1")
        self._local: Optional[_LocalFarm] = None
        if master is None:
            from .worker import cpu_count

            self._local = _LocalFarm(workers or cpu_count(), threads)
            master, token = self._local.url, self._local.token
        self.client = Client(master, token=token, tls_ca=tls_ca)
        self._initializer = initializer
        self._initargs = tuple(initargs)
        self._max_pickle_bytes = max_pickle_bytes
        self._retries = retries
        self._timeout = timeout
        self._max_crashes = max_crashes
        self._priority = priority
        self._requires = _pickling.environment()
        self._uploaded: set = set()
        # Function -> the hash of its module, so that a function is pickled once.
        self._hashes: "weakref.WeakKeyDictionary[Callable, str]" = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        self._shutdown = False
        # Outstanding submit futures and the jobs of running maps.
        self._futures: Dict[concurrent.futures.Future, int] = {}
        self._maps: "weakref.WeakSet[_MapRun]" = weakref.WeakSet()
        self._waiters = concurrent.futures.ThreadPoolExecutor(WAITERS, thread_name_prefix="farm-wait")

    # -- plumbing -------------------------------------------------------------------------------

    def _module(self, fn: Callable) -> str:
        """Pickles `fn` (with the initializer) and uploads it unless the master has it, once
        per function object: later calls take its hash from a cache that holds the function
        weakly (a callable that takes no weak reference is pickled every time)."""
        try:
            sha = self._hashes.get(fn)
        except TypeError:  # not weakly referenceable, or not hashable
            sha = None
        if sha is not None:
            return sha
        sha, data = _pickling.function_module(
            fn, self._initializer, self._initargs, self._max_pickle_bytes
        )
        if sha not in self._uploaded:
            if not self.client.has_module(sha):
                self.client.put_module(data, "pickle")
            self._uploaded.add(sha)
        try:
            self._hashes[fn] = sha
        except TypeError:
            pass
        return sha

    def _submit_fn(self, fn: Callable, lines: List[str]) -> Job:
        """Submits `lines` to `fn`'s module; when the master no longer has it (it evicted it
        from its store, or restarted without a journal), uploads it again and retries once."""
        sha = self._module(fn)
        try:
            return self._submit_job(sha, lines)
        except _native.NotFound as exc:
            if sha not in str(exc):
                raise
        with self._lock:
            self._uploaded.discard(sha)
            try:
                self._hashes.pop(fn, None)
            except TypeError:  # not weakly referenceable: never cached
                pass
        return self._submit_job(self._module(fn), lines)

    def _submit_job(self, sha: str, lines: List[str]) -> Job:
        return self.client.submit(
            "python",
            inputs=lines,
            params={"function": sha},
            priority=self._priority,
            retries=self._retries,
            max_crashes=self._max_crashes,
            shard_timeout=self._timeout,
            requires=self._requires,
        )

    def _check_open(self) -> None:
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")

    # -- concurrent.futures.Executor ----------------------------------------------------------

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> concurrent.futures.Future:
        with self._lock:
            self._check_open()
        job = self._submit_fn(fn, [_pickling.encode_chunk([(args, kwargs)])])
        future: concurrent.futures.Future = concurrent.futures.Future()
        future.job = job  # type: ignore[attr-defined]
        with self._lock:
            self._futures[future] = job.id
        future.add_done_callback(self._on_done)
        self._waiters.submit(self._wait_one, future, job)
        return future

    def _on_done(self, future: concurrent.futures.Future) -> None:
        with self._lock:
            job_id = self._futures.pop(future, None)
        if future.cancelled():
            # Notify `wait` and `as_completed` now, not when its waiter gets to it.
            try:
                future.set_running_or_notify_cancel()
            except RuntimeError:
                pass
            if job_id is not None:
                try:
                    self.client._native.cancel(job_id)
                except Exception:
                    pass

    def _wait_one(self, future: concurrent.futures.Future, job: Job) -> None:
        try:
            while not future.cancelled():
                status = job.wait(1.0)
                if status.get("state") in FINAL_STATES:
                    break
            else:
                return
            if status.get("state") != "succeeded":
                outcome: Tuple[bool, Any] = (False, ShardFailed(status))
            else:
                lines = status.get("result")
                if status.get("result_in_store") or not isinstance(lines, list):
                    lines = list(job.results())
                outcomes = _decode(lines)
                if len(outcomes) != 1:
                    outcome = (False, RemoteError("farm.BadOutput", f"{len(outcomes)} outputs for one call", ""))
                else:
                    outcome = outcomes[0]
        except BaseException as exc:  # the master went away, or a bug here
            outcome = (False, exc)
        try:
            if future.cancelled() or not future.set_running_or_notify_cancel():
                return
        except RuntimeError:  # cancelled (and notified) meanwhile
            return
        ok, value = outcome
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)

    def map(
        self,
        fn: Callable,
        *iterables: Iterable,
        timeout: Optional[float] = None,
        chunksize: int = 1,
    ) -> Iterator[Any]:
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1")
        with self._lock:
            self._check_open()
        deadline = None if timeout is None else time.monotonic() + timeout
        items = zip(*iterables)
        lines: List[str] = []
        sizes: List[int] = []
        while True:
            chunk = list(itertools.islice(items, chunksize))
            if not chunk:
                break
            lines.append(_pickling.encode_chunk((args, {}) for args in chunk))
            sizes.append(len(chunk))
        if not lines:
            return iter(())
        job = self._submit_fn(fn, lines)
        run = _MapRun(self, job, sizes, deadline)
        with self._lock:
            self._maps.add(run)
        return run.results()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shutdown = True
            futures = list(self._futures)
            maps = list(self._maps)
        if cancel_futures:
            for future in futures:
                future.cancel()
            for run in maps:
                run.cancel()
        if wait:
            concurrent.futures.wait(futures)
            # Each map's job runs to its end, as ProcessPoolExecutor's maps do; its reader is
            # then stopped, never waited on (it blocks on a full buffer when the iterator is not
            # read). What the iterator has not yielded, it reads from the job's stored result.
            for run in maps:
                try:
                    run.wait_final(deadline=False)
                except Exception:  # the master went away: nothing left to wait for
                    pass
                run.stop.set()
        self._waiters.shutdown(wait=wait)
        if self._local is not None and (wait or cancel_futures):
            self._local.stop()

    def __exit__(self, exc_type, exc, tb):
        self.shutdown(wait=True)
        return False


class _MapRun:
    """One `map`'s job, read by a thread into a bounded queue and yielded in order.

    When the watch cannot carry the rest (the master dropped it as fell behind, the shards
    that arrived ahead of the awaited one pass `MAP_PENDING_BYTES`, or the reader was stopped
    by `shutdown`), the iterator waits for the job to end and reads the rest in order from the
    job's stored result, by offset."""

    _END = object()

    def __init__(self, executor: Executor, job: Job, sizes: List[int], deadline: Optional[float]):
        self.executor = executor
        self.job = job
        self.sizes = sizes
        self.deadline = deadline
        self.buffer = _Buffer(MAP_READ_AHEAD, MAP_READ_AHEAD_BYTES)
        self.stop = threading.Event()
        self.finished = threading.Event()
        #: Why the rest was read from the store (None while it comes from the watch).
        self.from_store: Optional[str] = None
        #: The most bytes of out-of-order shard outputs held at once.
        self.pending_peak = 0
        self.thread = threading.Thread(target=self._read, name=f"farm-map-{job.id}", daemon=True)
        self.thread.start()

    def cancel(self) -> None:
        self.stop.set()
        try:
            self.job.cancel()
        except Exception:
            pass

    def _remaining(self) -> Optional[float]:
        if self.deadline is None:
            return None
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise concurrent.futures.TimeoutError()
        return remaining

    def wait_final(self, deadline: bool = True) -> dict:
        """Waits (with `deadline`, within the map's) until the job ends; its final status."""
        while True:
            remaining = self._remaining() if deadline else None
            status = self.job.wait(1.0 if remaining is None else min(remaining, 1.0))
            if status.get("state") in FINAL_STATES:
                return status

    def _put(self, item: Any, nbytes: int = 0) -> bool:
        return self.buffer.put(item, nbytes, self.stop)

    def _read(self) -> None:
        """Puts (shard, lines, size) as shards end, then (None, final status or error, 0)."""
        try:
            final = None
            for event in self.job.watch(shards=True, replay=True):
                if self.stop.is_set():
                    return
                if event.get("type") == "shard":
                    lines = _lines(event.get("output"))
                    size = sum(len(line) for line in lines) if lines is not None else 0
                    if lines is not None and not self._put((event.get("shard"), lines, size), size):
                        return
                elif event.get("type") == "final":
                    final = event.get("status") or {}
            if final is None:
                final = self.job.wait(None)
            self._put((None, final, 0))
        except BaseException as exc:
            self._put((None, exc, 0))
        finally:
            self.finished.set()

    def _get(self) -> Tuple[Any, Any, int]:
        """The reader's next item; (None, None, 0) when the reader ended without one (stopped)."""
        while True:
            remaining = self._remaining()
            try:
                return self.buffer.get(min(remaining, 0.5) if remaining is not None else 0.5)
            except queue.Empty:
                if self.finished.is_set():
                    try:
                        return self.buffer.get(0)
                    except queue.Empty:
                        return (None, None, 0)

    def results(self) -> Iterator[Any]:
        done_ok = False
        try:
            pending: Dict[int, Tuple[List[str], int]] = {}
            pending_bytes = 0
            next_shard = 0
            yielded = 0
            lines_read = 0
            total = sum(self.sizes)
            final: Any = None
            while next_shard < len(self.sizes):
                if next_shard in pending:
                    lines, size = pending.pop(next_shard)
                    pending_bytes -= size
                    outcomes = _decode(lines)
                    if len(outcomes) != self.sizes[next_shard]:
                        raise RemoteError(
                            "farm.BadOutput",
                            f"shard {next_shard} has {len(outcomes)} outputs for {self.sizes[next_shard]} items",
                            "",
                        )
                    next_shard += 1
                    lines_read += len(lines)
                    for ok, value in outcomes:
                        yielded += 1
                        if not ok:
                            raise value
                        yield value
                    continue
                shard, payload, size = self._get()
                if shard is None:
                    final = payload
                    break
                if isinstance(shard, int) and shard >= next_shard and shard not in pending:
                    pending[shard] = (payload, size)
                    pending_bytes += size
                    self.pending_peak = max(self.pending_peak, pending_bytes)
                    if pending_bytes > MAP_PENDING_BYTES:
                        # Shard `next_shard` is slow: stop holding the ones past it.
                        self.from_store = "pending"
                        pending.clear()
                        self.stop.set()
                        break
            if yielded == total:
                done_ok = True
                return
            # The watch did not carry every shard: the rest from the job's result.
            if isinstance(final, _native.ResourceExhausted) and "fell behind" in str(final):
                self.from_store = "fell behind"
                final = None
            elif final is None and self.from_store is None:
                self.from_store = "stopped"
            if isinstance(final, BaseException):
                raise final
            if final is None or final.get("state") not in FINAL_STATES:
                final = self.wait_final()
            if final.get("state") != "succeeded":
                raise ShardFailed(final)
            rest = final.get("result")
            if isinstance(rest, list) and not final.get("result_in_store"):
                source: Iterable = rest[lines_read:]
            else:
                source = self.job.results(offset=lines_read)
            for line in source:
                for ok, value in _decode((line,)):
                    if not ok:
                        raise value
                    yield value
            done_ok = True
        finally:
            if not done_ok:
                self.cancel()
            else:
                self.stop.set()
