"""`farm.Client`: the typed API over the native client (`farm._native.Client`)."""

from __future__ import annotations

import time
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from . import _native

#: Job states after which a job does not change.
FINAL_STATES = ("succeeded", "failed", "cancelled")


class JobFailed(_native.FarmError):
    """`Job.result()` of a job that failed or was cancelled; `.status` is its final status."""

    def __init__(self, status: dict):
        super().__init__(
            f"job {status.get('job')} {status.get('state')}: {status.get('error') or 'no reason given'}"
        )
        self.code = "JOB_" + str(status.get("state", "")).upper()
        self.status = status


class Job:
    """A submitted job: its id and shard count, and calls about it."""

    def __init__(self, client: "Client", job_id: int, shards: int):
        self.client = client
        self.id = job_id
        self.shards = shards

    def __repr__(self) -> str:
        return f"<farm.Job {self.id} ({self.shards} shards)>"

    def status(self) -> dict:
        """The job's status now (state, done, result, error, waiting, ...)."""
        return self.client._native.get(self.id)

    def wait(self, timeout: Optional[float] = None) -> dict:
        """Waits until the job ends or `timeout` seconds pass; its status either way."""
        return self.client._native.wait(self.id, timeout)

    def done(self) -> bool:
        return self.status().get("state") in FINAL_STATES

    def result(self, timeout: Optional[float] = None) -> Any:
        """Waits for the job and returns its reduced result; raises `JobFailed` when it failed
        or was cancelled, TimeoutError when `timeout` passed first. A list result too large for
        a status is read from the store (see `results()`)."""
        status = self.wait(timeout)
        state = status.get("state")
        if state not in FINAL_STATES:
            raise TimeoutError(f"job {self.id} is still {state} after {timeout} s")
        if state != "succeeded":
            raise JobFailed(status)
        if status.get("result_in_store"):
            return list(self.results())
        return status.get("result")

    def results(self, offset: int = 0, partial: bool = False) -> Iterator[Any]:
        """The elements of the job's list result from `offset` on, streamed from the master in
        chunks: memory stays flat for a result of any size. With `partial`, also of a failed
        or cancelled job (``{"missing_shard": N}`` for each shard without an output)."""
        return iter(self.client._native.results(self.id, offset, partial))

    def watch(self, shards: bool = True, replay: bool = True) -> Iterator[dict]:
        """Progress events (and shard outputs when `shards`), until the final status."""
        return iter(self.client._native.watch(self.id, shards, replay))

    def cancel(self) -> dict:
        return self.client._native.cancel(self.id)

    def logs(self) -> List[dict]:
        """The job's shard logs and run records."""
        return self.client._native.logs(self.id)


class Client:
    """A connection to a farm master.

    ``Client("http://127.0.0.1:7070", token=None, tls_ca=None)``; `tls_ca` is the path of a CA
    certificate (PEM) for an ``https://`` master. Errors are `farm.FarmError` subclasses, one
    per gRPC code, carrying the master's message."""

    def __init__(self, master: str, token: Optional[str] = None, tls_ca: Optional[str] = None):
        self.master = master
        self._native = _native.Client(master, token=token, tls_ca=tls_ca)

    def __repr__(self) -> str:
        return f"<farm.Client {self.master}>"

    def submit(
        self,
        kind: str,
        range: Optional[Tuple[int, int]] = None,
        inputs: Optional[Sequence[str]] = None,
        params: Optional[Dict[str, Any]] = None,
        shard_size: Optional[int] = None,
        *,
        priority: Optional[int] = None,
        retries: Optional[int] = None,
        max_crashes: Optional[int] = None,
        shard_timeout: Optional[float] = None,
        verify_percent: Optional[int] = None,
        no_worker_timeout: Optional[float] = None,
        record_runs: Optional[bool] = None,
        requires: Optional[Dict[str, str]] = None,
    ) -> Job:
        """Submits a job of kernel `kind` over `range=(start, end)` cut into shards of
        `shard_size` indices, or over `inputs` (one shard per line). Timeouts in seconds."""
        if (range is None) == (inputs is None):
            raise ValueError("give exactly one of range=(start, end) and inputs=[...]")
        spec: Dict[str, Any] = {"kind": kind}
        if range is not None:
            start, end = range
            spec["start"], spec["end"] = int(start), int(end)
        else:
            if isinstance(inputs, str):
                raise TypeError("inputs is a list of lines, not one string")
            spec["inputs"] = [str(line) for line in inputs]
        if shard_size is not None:
            spec["shard_size"] = int(shard_size)
        if params:
            spec["params"] = {str(k): str(v) for k, v in params.items()}
        for key, value in (
            ("priority", priority),
            ("retries", retries),
            ("max_crashes", max_crashes),
            ("verify_percent", verify_percent),
            ("record_runs", record_runs),
        ):
            if value is not None:
                spec[key] = value
        if shard_timeout is not None:
            spec["shard_timeout_ms"] = max(1, int(shard_timeout * 1000))
        if no_worker_timeout is not None:
            spec["no_worker_timeout_ms"] = max(1, int(no_worker_timeout * 1000))
        if requires:
            spec["requires"] = {str(k): str(v) for k, v in requires.items()}
        job_id, shards = self._native.submit(spec)
        return Job(self, job_id, shards)

    def job(self, job_id: int) -> Job:
        """A handle on an existing job."""
        status = self._native.get(job_id)
        return Job(self, job_id, status.get("shards", 0))

    def jobs(self) -> List[dict]:
        return self._native.jobs()

    def workers(self) -> List[dict]:
        return self._native.workers()

    def kinds(self) -> List[dict]:
        return self._native.kinds()

    def put_module(self, data: bytes, format: str = "pickle") -> str:
        return self._native.put_module(data, format)

    def has_module(self, sha: str) -> bool:
        return self._native.has_module(sha)

    def wait_for_workers(self, n: int = 1, timeout: float = 30.0, kind: Optional[str] = None) -> List[dict]:
        """Waits until at least `n` workers (offering `kind`, if given) are connected."""
        deadline = time.monotonic() + timeout
        while True:
            workers = [
                w
                for w in self.workers()
                if kind is None or kind in (w.get("kinds") or [])
            ]
            if len(workers) >= n:
                return workers
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(workers)} of {n} workers joined in {timeout} s")
            time.sleep(0.05)
