"""farm.Executor against a real master and real Python workers."""

from __future__ import annotations

import concurrent.futures as cf
import json
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import farm
from conftest import WAIT, wait_for


def square(x):
    return x * x


def slow_square(x):
    time.sleep(0.02)
    return x * x


def raise_value_error(x):
    if x == 3:
        raise ValueError(f"bad item {x}")
    return x


def spin_forever():
    while True:
        pass


def sleep_then(seconds, value):
    time.sleep(seconds)
    return value


READY = None


def get_ready(x):
    return (READY, os.getpid(), x)


def set_ready(value):
    global READY
    READY = value


def test_the_initializer_runs_in_the_worker_before_the_function(shared):
    with shared.executor(initializer=set_ready, initargs=("initialized",)) as ex:
        out = list(ex.map(get_ready, range(20), chunksize=2))
    assert [(r, x) for r, _, x in out] == [("initialized", x) for x in range(20)]
    assert READY is None, "it ran on the workers, not here"


@pytest.mark.parametrize("chunksize", [1, 100])
def test_map_equals_the_builtin_map_over_10000_items(shared, chunksize):
    with shared.executor() as ex:
        assert list(ex.map(square, range(10_000), chunksize=chunksize)) == list(map(square, range(10_000)))


def test_map_of_several_iterables_stops_at_the_shortest_and_submit_takes_kwargs(shared):
    with shared.executor() as ex:
        assert list(ex.map(pow, [2, 3, 4], [5, 6], chunksize=2)) == [32, 729]
        assert ex.submit(int, "ff", base=16).result(WAIT) == 255
        assert list(ex.map(square, [])) == []


def test_futures_work_with_as_completed_and_wait(shared):
    with shared.executor() as ex:
        futures = [ex.submit(square, i) for i in range(10)]
        assert sorted(f.result() for f in cf.as_completed(futures, timeout=WAIT)) == [
            i * i for i in range(10)
        ]
        done, not_done = cf.wait(futures, timeout=WAIT)
        assert len(done) == 10 and not not_done


def test_an_exception_comes_back_with_its_type_and_remote_traceback(shared):
    with shared.executor() as ex:
        err = ex.submit(raise_value_error, 3).exception(WAIT)
        assert type(err) is ValueError and str(err) == "bad item 3"
        assert isinstance(err.__cause__, farm.RemoteTraceback)
        assert "raise_value_error" in str(err.__cause__) and "ValueError: bad item 3" in str(err.__cause__)

        # In a map, the items before it are yielded, then it raises at its place.
        it = ex.map(raise_value_error, range(6), chunksize=2)
        assert [next(it), next(it), next(it)] == [0, 1, 2]
        with pytest.raises(ValueError, match="bad item 3"):
            next(it)


class Unpicklable(Exception):
    def __reduce__(self):
        raise TypeError("this exception does not pickle")


def raise_unpicklable():
    raise Unpicklable("carried as text")


def return_a_lock():
    return threading.Lock()


def test_what_cannot_be_pickled_fails_its_item_with_the_reason(shared):
    with shared.executor() as ex:
        err = ex.submit(raise_unpicklable).exception(WAIT)
        assert isinstance(err, farm.RemoteError) and isinstance(err, farm.FarmError)
        assert err.type_name.endswith("Unpicklable") and err.message == "carried as text"
        assert "raise_unpicklable" in err.traceback

        err = ex.submit(return_a_lock).exception(WAIT)
        assert isinstance(err, farm.ResultNotPicklable), repr(err)
        assert "cannot be pickled" in str(err)


def test_a_lambda_and_a_closure_defined_in_main_run(shared, tmp_path):
    script = tmp_path / "main_script.py"
    script.write_text(
        textwrap.dedent(
            """
            import json, os, sys
            import farm

            offset = 1000

            def make_adder(n):
                def add(x):
                    return x + n + offset
                return add

            with farm.Executor(os.environ["FARM_MASTER"], token=os.environ["FARM_TOKEN"]) as ex:
                lam = list(ex.map(lambda x: x * 3, range(5)))
                closure = ex.submit(make_adder(7), 1).result(120)
            print(json.dumps({"lambda": lam, "closure": closure}))
            """
        )
    )
    env = shared.env()
    env["FARM_MASTER"] = shared.url
    out = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=WAIT, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"lambda": [0, 3, 6, 9, 12], "closure": 1008}


def test_a_function_from_a_local_module_that_is_not_installed_runs(shared, tmp_path):
    (tmp_path / "farm_test_localmod.py").write_text("def cube(x):\n    return x ** 3\n")
    sys.path.insert(0, str(tmp_path))
    try:
        import farm_test_localmod

        with shared.executor() as ex:
            assert list(ex.map(farm_test_localmod.cube, range(5))) == [0, 1, 8, 27, 64]
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("farm_test_localmod", None)


def test_a_function_over_the_pickle_limit_is_refused_before_upload(shared):
    big = list(range(300_000))

    def f(i):
        return big[i]

    with shared.executor(max_pickle_bytes=64 * 1024) as ex:
        before = len(shared.client.jobs())
        with pytest.raises(farm.PickleTooLarge, match=r"largest captured values: big \("):
            ex.submit(f, 1)
        assert len(shared.client.jobs()) == before


def test_the_client_submits_a_python_job_by_hand_and_names_a_missing_function(shared):
    from farm import _pickling

    sha, data = _pickling.function_module(square)
    client = shared.client
    assert client.put_module(data) == sha and client.has_module(sha)
    job = client.submit(
        "python",
        inputs=[_pickling.encode_chunk([((i,), {}) for i in range(3)])],
        params={"function": sha},
        requires=farm.environment(),
    )
    lines = job.result(WAIT)
    assert [v for l in lines for _, v in _pickling.decode_line(l, None)] == [0, 1, 4]
    assert job.status()["state"] == "succeeded"
    assert any(j["job"] == job.id for j in client.jobs())
    assert isinstance(job.logs(), list)
    assert any(k["kernel"]["kind"] == "python" for k in client.kinds()), client.kinds()

    missing = "0" * 64
    with pytest.raises(farm.NotFound, match=missing):
        client.submit("python", inputs=["x"], params={"function": missing})


def test_shutdown_with_cancel_futures_cancels_their_jobs(cluster):
    cluster.worker(processes=1)
    ex = cluster.executor()
    blocker = ex.submit(sleep_then, 600, "never")
    wait_for(lambda: blocker.job.status()["state"] == "running", "the first call to run")
    queued = [ex.submit(square, i) for i in range(5)]
    ex.shutdown(wait=True, cancel_futures=True)
    assert blocker.cancelled() and all(f.cancelled() for f in queued)
    ids = {f.job.id for f in [blocker, *queued]}
    wait_for(
        lambda: {j["job"]: j["state"] for j in cluster.client.jobs() if j["job"] in ids}
        == {i: "cancelled" for i in ids},
        "every job to be cancelled",
    )
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.submit(square, 1)
    # The worker that ran the blocker is free again: a new call runs.
    with cluster.executor() as ex2:
        assert ex2.submit(square, 9).result(WAIT) == 81


def test_a_kill_9_of_a_python_worker_mid_map_keeps_the_result_exact(cluster):
    cluster.worker(processes=2)
    with cluster.executor(retries=5, max_crashes=10) as ex:
        it = ex.map(slow_square, range(300))
        first = [next(it) for _ in range(20)]
        busy = wait_for(
            lambda: [w for w in cluster.client.workers() if w["in_flight"] > 0],
            "a worker with a shard in flight",
        )
        os.kill(busy[0]["pid"], 9)
        rest = list(it)
    assert first + rest == [x * x for x in range(300)]
    # Its supervisor restarted it.
    wait_for(
        lambda: len([w for w in cluster.client.workers() if w["pid"] != busy[0]["pid"]]) >= 2,
        "the killed worker process to be restarted",
    )


def exit_once(marker, value):
    """Ends its process the first time (no exception: the process is gone), returns after."""
    if not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(3)
    return value


def test_a_worker_process_that_exits_mid_shard_is_restarted_and_the_shard_reruns(cluster, tmp_path):
    cluster.worker(processes=1)
    with cluster.executor(retries=2) as ex:
        future = ex.submit(exit_once, str(tmp_path / "exited"), "second run")
        assert future.result(WAIT) == "second run"
        assert (tmp_path / "exited").exists()
        assert future.job.status()["reruns"] >= 1


def test_sigterm_stops_the_supervisor_and_its_processes(cluster):
    sup = cluster.worker(processes=2)
    pids = {w["pid"] for w in cluster.client.workers()}
    assert len(pids) == 2 and sup.pid not in pids
    sup.send_signal(15)
    assert sup.wait(WAIT) == 0
    wait_for(lambda: not cluster.client.workers(), "the workers to leave the master")
    for pid in pids:
        wait_for(lambda: not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z",
                 f"worker process {pid} to end")


def test_the_worker_command_refuses_bad_arguments_with_one_line():
    out = subprocess.run([sys.executable, "-m", "farm", "worker", "--master", "http://127.0.0.1:1",
                          "--processes", "0"], capture_output=True, text=True, timeout=WAIT)
    assert out.returncode == 2 and out.stderr.strip() == "farm worker: --processes must be at least 1"
    out = subprocess.run([sys.executable, "-m", "farm"], capture_output=True, text=True, timeout=WAIT)
    assert out.returncode == 2 and "usage: python -m farm worker" in out.stderr


def test_a_timeout_ends_a_shard_stuck_in_while_true(cluster):
    cluster.worker(processes=1)
    with cluster.executor(timeout=1, retries=0) as ex:
        err = ex.submit(spin_forever).exception(WAIT)
        assert isinstance(err, farm.ShardFailed), repr(err)
        assert err.status["state"] == "failed"
        # Its shard ended within about a second of the timeout (a loaded machine: slack).
        assert err.status["elapsed_ms"] < 8000, err.status
        # The worker runs the next call: its process was interrupted or restarted.
        assert ex.submit(square, 12).result(WAIT) == 144


def test_an_environment_mismatch_waits_then_runs_when_a_matching_worker_joins(cluster, other_python):
    other = subprocess.run(
        [other_python, "-c", "import farm; print(farm.environment()['python'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    mine = farm.environment()["python"]
    assert other != mine, "FARM_OTHER_PYTHON must be another Python version"
    cluster.worker(processes=1, python=other_python)
    with cluster.executor() as ex:
        future = ex.submit(square, 7)
        expected = f"no worker runs {mine}"
        status = wait_for(
            lambda: (lambda s: s if expected in (s.get("waiting") or "") else None)(future.job.status()),
            f"the job to wait with {expected!r}",
        )
        assert status["state"] == "queued" and not future.done()
        listed = [j for j in cluster.client.jobs() if j["job"] == future.job.id]
        assert expected in listed[0]["waiting"]
        cluster.worker(processes=1)
        assert future.result(WAIT) == 49


def test_a_worker_without_allow_python_refuses_python_jobs(cluster):
    cluster.worker(processes=1, allow_python=False)
    with cluster.executor() as ex:
        err = ex.submit(square, 3).exception(WAIT)
    assert isinstance(err, farm.ShardFailed), repr(err)
    assert "python kernel is off: start the worker with --allow-python" in str(err), err
    assert err.status["done"] == 0


def test_a_200_mb_result_streams_with_flat_client_memory(shared, tmp_path):
    """200 items of 1 MiB, one job; the client keeps a few at a time."""
    script = tmp_path / "big.py"
    script.write_text(
        textwrap.dedent(
            """
            import json, os, resource, sys
            import farm

            def block(i):
                return bytes([i % 256]) * (1 << 20)

            def rss_mib():
                with open("/proc/self/statm") as f:
                    return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

            with farm.Executor(os.environ["FARM_MASTER"], token=os.environ["FARM_TOKEN"]) as ex:
                ex.submit(len, b"").result(120)   # warm: the module, the connection
                base = rss_mib()
                peak = base
                total = 0
                for i, b in enumerate(ex.map(block, range(200))):
                    assert b == bytes([i % 256]) * (1 << 20)
                    total += len(b)
                    peak = max(peak, rss_mib())
            print(json.dumps({"total": total, "base": base, "peak": peak}))
            """
        )
    )
    env = shared.env()
    env["FARM_MASTER"] = shared.url
    out = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=WAIT * 2, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    v = json.loads(out.stdout)
    assert v["total"] == 200 << 20
    # Flat: far below the 200 MiB (267 MiB of base64) that holding it would take.
    assert v["peak"] - v["base"] < 64, v


def test_the_local_executor_is_a_drop_in_for_process_pool(farm_bin):
    with farm.Executor(workers=2) as ex:
        assert list(ex.map(square, range(100), chunksize=10)) == [x * x for x in range(100)]
        assert ex.submit(pow, 2, 10).result(WAIT) == 1024
        supervisor = ex._local.supervisor
    assert supervisor.poll() is not None, "shutdown stops the local workers"


def test_an_executor_pickles_a_function_once(shared, monkeypatch):
    from farm import _pickling

    pickled = []
    real = _pickling.function_module

    def counting(fn, *args, **kwargs):
        pickled.append(fn)
        return real(fn, *args, **kwargs)

    monkeypatch.setattr(_pickling, "function_module", counting)
    with shared.executor() as ex:
        assert ex.submit(square, 3).result(WAIT) == 9
        assert list(ex.map(square, range(3))) == [0, 1, 4]
        assert ex.submit(square, 4).result(WAIT) == 16
        assert pickled == [square]
        # Another function object is pickled on its own.
        assert ex.submit(slow_square, 2).result(WAIT) == 4
        assert pickled == [square, slow_square]
