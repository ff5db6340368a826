"""`farm._native.run_worker`: the Rust worker session in a Python process, its `python`
kernel calling the runner, the interruption of cancelled and timed-out shards, and the refusal
of a worker without allow_python. The master runs in this process (`start_master`); each
worker is a child process, killed at the end of its test."""

import os
import subprocess
import sys
import textwrap
import time

import pytest

from farm import _native

#: Every wait is bounded by this (a loaded 2-core machine, debug builds).
WAIT = 120.0

WORKER = textwrap.dedent(
    """
    import sys, time
    from farm import _native

    def runner(sha, data, line):
        if line == "spin":
            while True:
                pass
        if line == "stuck":
            time.sleep(60)  # in C: the asynchronous exception cannot reach it
        return [sha[:8] + ":" + data.decode() + ":" + line, "second"]

    _native.run_worker(sys.argv[1], runner=runner, threads=int(sys.argv[3]), name="native-test",
                       labels={"python": "test"}, allow_python=sys.argv[2] == "1",
                       exit_on_disconnect=True)
    """
)


@pytest.fixture
def farm(tmp_path):
    master = _native.start_master()
    client = _native.Client(master.url)
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    procs = []

    def start_worker(allow_python=True, threads=1):
        proc = subprocess.Popen(
            [sys.executable, str(script), master.url, "1" if allow_python else "0", str(threads)],
            stdin=subprocess.DEVNULL,
        )
        procs.append(proc)
        deadline = time.monotonic() + WAIT
        while not any(w["name"] == "native-test" for w in client.workers()):
            assert proc.poll() is None, "the worker exited before it registered"
            assert time.monotonic() < deadline, "the worker did not register"
            time.sleep(0.05)
        return proc

    yield client, start_worker
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=WAIT)
    master.stop()


def python_job(client, inputs, **limits):
    sha = client.put_module(b"pickled", "pickle")
    assert client.has_module(sha)
    spec = {"kind": "python", "inputs": inputs, "params": {"function": sha}}
    spec.update(limits)
    job, _ = client.submit(spec)
    return sha, job


def test_the_runner_gets_hash_bytes_and_input_and_its_lines_are_the_result(farm):
    client, start_worker = farm
    start_worker(threads=2)
    assert client.workers()[0]["labels"] == {"python": "test"}
    sha, job = python_job(client, ["a", "b", "c"])
    status = client.wait(job, timeout=WAIT)
    assert status["state"] == "succeeded", status
    expected = []
    for line in ["a", "b", "c"]:
        expected += [f"{sha[:8]}:pickled:{line}", "second"]
    assert list(client.results(job)) == expected


def test_a_timed_out_shard_is_interrupted_and_the_worker_lives_on(farm):
    client, start_worker = farm
    worker = start_worker()
    _, job = python_job(client, ["spin"], shard_timeout_ms=300)
    status = client.wait(job, timeout=WAIT)
    assert status["state"] == "failed", status
    assert "timed out" in status["error"], status
    # The spinning shard was stopped by the exception, not by ending the process: the same
    # worker, with its one thread, runs the next job.
    _, job = python_job(client, ["x"])
    assert client.wait(job, timeout=WAIT)["state"] == "succeeded"
    assert worker.poll() is None


def test_a_shard_stuck_in_c_ends_its_process_within_the_grace(farm):
    client, start_worker = farm
    worker = start_worker()
    python_job(client, ["stuck"], shard_timeout_ms=300)
    # 300 ms timeout + 1 s grace; generous for a loaded machine, far below the 60 s sleep.
    assert worker.wait(timeout=30) == _native.INTERRUPT_EXIT


def test_cancel_interrupts_a_running_shard(farm):
    client, start_worker = farm
    worker = start_worker()
    _, job = python_job(client, ["spin"])
    deadline = time.monotonic() + WAIT
    while client.get(job)["in_flight"] == 0:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    client.cancel(job)
    # One thread: the next job runs only once the spinning shard let go of it.
    _, job = python_job(client, ["after"])
    assert client.wait(job, timeout=WAIT)["state"] == "succeeded"
    assert worker.poll() is None


def test_a_worker_without_allow_python_refuses_python_jobs(farm):
    client, start_worker = farm
    start_worker(allow_python=False)
    _, job = python_job(client, ["a"])
    status = client.wait(job, timeout=WAIT)
    assert status["state"] == "failed"
    assert "python kernel is off: start the worker with --allow-python" in status["error"]
