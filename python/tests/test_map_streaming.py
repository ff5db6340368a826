"""`Executor.map` when its iterator is read slowly or not at all, and calls whose function the
master lost: the rest of a map comes from the job's stored result, a lost function is uploaded
again."""

from __future__ import annotations

import os
import threading
import time

import pytest

import farm
import farm.executor
from conftest import WAIT, Cluster, wait_for


def square(x):
    return x * x


def padded(x):
    """`x` with 1000 bytes of padding: enough bytes in flight to fill the stream's windows."""
    return x, bytes(1000)


def first_waits_for(marker, x):
    """Item 0 waits (at most WAIT seconds) until `marker` exists; every item returns itself."""
    if x == 0:
        deadline = time.monotonic() + WAIT
        while not os.path.exists(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
    return x


def the_run(ex: farm.Executor):
    runs = list(ex._maps)
    assert len(runs) == 1, runs
    return runs[0]


def test_shutdown_returns_with_a_map_read_once_and_the_rest_reads_from_the_store(shared):
    out: dict = {}

    def body():
        with shared.executor() as ex:
            it = ex.map(square, range(1000))
            out["first"] = next(it)
        out["rest"] = list(it)

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    thread.join(WAIT)
    assert not thread.is_alive(), "shutdown hung on a map whose iterator was not read"
    assert out["first"] == 0
    assert out["rest"] == [x * x for x in range(1, 1000)]


def test_a_map_read_after_the_master_dropped_its_watch_reads_the_rest_from_the_store(shared):
    # 10000 one-item shards of about 1.4 KB of output each: far past the master's 4096 shard
    # outputs queued per watcher plus what the HTTP/2 windows (2 MiB a stream) and the
    # client's read-ahead (64 shards) hold while the iterator is not read.
    n = 10_000
    with shared.executor() as ex:
        it = ex.map(padded, range(n))
        assert next(it) == (0, bytes(1000))
        run = the_run(ex)
        assert run.job.wait(WAIT)["state"] == "succeeded"
        assert list(it) == [(x, bytes(1000)) for x in range(1, n)]
        assert run.from_store == "fell behind", "the watch was not dropped: the test proves nothing"


def test_shards_ahead_of_a_slow_first_one_are_held_up_to_a_byte_cap(shared, tmp_path, monkeypatch):
    cap = 1000
    monkeypatch.setattr(farm.executor, "MAP_PENDING_BYTES", cap)
    marker = str(tmp_path / "go")
    n = 300
    with shared.executor() as ex:
        it = ex.map(first_waits_for, [marker] * n, range(n))
        run = the_run(ex)
        out: dict = {}
        consumer = threading.Thread(target=lambda: out.setdefault("all", list(it)), daemon=True)
        consumer.start()
        # The other worker ends the shards past 0 while shard 0 waits: the held ones pass the cap.
        wait_for(lambda: run.from_store == "pending", "the map to stop holding shards past the cap")
        open(marker, "w").close()
        consumer.join(WAIT)
        assert not consumer.is_alive()
        assert out["all"] == list(range(n))
        # Held bytes never passed the cap by more than the one shard that crossed it.
        assert cap < run.pending_peak < cap + 200, run.pending_peak


def test_a_function_the_master_lost_is_uploaded_again(cluster, farm_bin):
    cluster.worker(processes=1)
    fresh = []
    try:
        with cluster.executor() as ex:
            assert ex.submit(square, 3).result(WAIT) == 9
            # The master restarted without a journal: same executor, an empty module store.
            for call in (lambda: ex.submit(square, 4).result(WAIT), lambda: list(ex.map(square, [4]))):
                master = Cluster(farm_bin)
                fresh.append(master)
                master.worker(processes=1)
                ex.client = farm.Client(master.url, token=master.token)
                assert call() in (16, [16])
    finally:
        for master in fresh:
            master.close()
