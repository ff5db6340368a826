"""`farm._native`'s client and in-process master: every call against a real master in this
process, errors by gRPC code, Ctrl-C out of a wait."""

import os
import signal
import threading
import time

import pytest

from farm import _native


@pytest.fixture
def master():
    m = _native.start_master()
    yield m
    m.stop()


def test_errors_are_one_class_per_code_under_farm_error():
    assert _native.NotFound.code == "NOT_FOUND"
    assert _native.InvalidArgument.code == "INVALID_ARGUMENT"
    for name in ["Cancelled", "Unavailable", "Unauthenticated", "DataLoss", "ResourceExhausted"]:
        assert issubclass(getattr(_native, name), _native.FarmError)


def test_unknown_job_is_not_found_with_the_masters_message(master):
    client = _native.Client(master.url)
    with pytest.raises(_native.NotFound) as e:
        client.get(12345)
    assert "no job 12345" in str(e.value)
    assert e.value.code == "NOT_FOUND"


def test_a_python_job_queues_on_a_fresh_master_then_cancels(master):
    client = _native.Client(master.url)
    sha = client.put_module(b"a pickled function", "pickle")
    job, shards = client.submit({"kind": "python", "inputs": ["a", "b"], "params": {"function": sha}})
    assert shards == 2
    status = client.wait(job, timeout=0.2)
    assert status["state"] == "queued"
    assert client.cancel(job)["state"] == "cancelled"
    events = list(client.watch(job))
    assert events[-1]["type"] == "final"
    assert events[-1]["status"]["state"] == "cancelled"
    assert [j["job"] for j in client.jobs()] == [job]


def test_a_python_job_whose_function_is_not_stored_is_not_found(master):
    client = _native.Client(master.url)
    missing = "0" * 64
    with pytest.raises(_native.NotFound, match=missing):
        client.submit({"kind": "python", "inputs": ["a"], "params": {"function": missing}})


def test_bad_specs_are_invalid_argument_naming_the_key(master):
    client = _native.Client(master.url)
    with pytest.raises(_native.InvalidArgument, match="unknown spec key 'bogus'|\"bogus\""):
        client.submit({"kind": "primes", "end": 10, "bogus": 1})
    with pytest.raises(_native.InvalidArgument, match="end"):
        client.submit({"kind": "primes", "end": "ten"})
    with pytest.raises(_native.InvalidArgument, match="kind"):
        client.submit({"end": 10})


def test_a_master_that_is_gone_is_unavailable():
    m = _native.start_master()
    url = m.url
    m.stop()
    m.stop()  # idempotent
    assert not m.running
    with pytest.raises(_native.Unavailable):
        _native.Client(url).jobs()


def test_ctrl_c_interrupts_a_wait(master):
    client = _native.Client(master.url)
    sha = client.put_module(b"a pickled function", "pickle")
    job, _ = client.submit({"kind": "python", "inputs": ["a"], "params": {"function": sha}})
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        client.wait(job, timeout=60)
    # The wait checks signals every 100 ms; generous for a loaded machine.
    assert time.monotonic() - started < 10
    timer.join()
