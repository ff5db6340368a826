#!/usr/bin/env python3
"""The Python peers of `farm-bench peers`: the same workloads as farm, on Dask, Ray,
multiprocessing.Pool and ProcessPoolExecutor, each with 2 worker processes of 1 thread.

    python3 bench/peers/peers.py PEER WORKLOAD [WORKLOAD ...] [--n-noop N] ...

PEER is mp, ppe, dask or ray; WORKLOAD is noop, spin10, spin1 or latency (or all). The pool
or cluster is started once and warmed up (every worker has run a task) before any workload is
timed, so start-up is not counted, as it is not for farm (its master measures a job from
submit to end). Each workload prints one JSON line:

    {"peer": "ray", "workload": "spin10", "n": 800, "elapsed_s": 4.3, "value": 0.93}

where value is tasks/s for noop, efficiency (ideal / elapsed, ideal = n x t / 2 processes)
for spinN, and for latency the p50 in ms (with p50_ms and p99_ms beside it). A spin task burns
t ms of its own thread's CPU time (time.thread_time), as farm's spin kernel does.
"""

import argparse
import json
import sys
import time

PROCESSES = 2
WORKLOADS = ("noop", "spin10", "spin1", "latency")


def noop(i):
    """A task that does nothing."""
    return i


def spin(ms):
    """Burns ms milliseconds of this thread's own CPU time."""
    end = time.thread_time() + ms / 1000.0
    while time.thread_time() < end:
        pass
    return ms


class MpPeer:
    """multiprocessing.Pool(2), chunksize=1."""

    def __init__(self):
        import multiprocessing

        self.pool = multiprocessing.Pool(PROCESSES)

    def map(self, fn, args):
        return self.pool.map(fn, args, chunksize=1)

    def one(self, fn, arg):
        return self.pool.apply(fn, (arg,))

    def close(self):
        self.pool.close()
        self.pool.join()


class PpePeer:
    """concurrent.futures.ProcessPoolExecutor(2) (its map's chunksize is 1)."""

    def __init__(self):
        from concurrent.futures import ProcessPoolExecutor

        self.ex = ProcessPoolExecutor(PROCESSES)

    def map(self, fn, args):
        return list(self.ex.map(fn, args))

    def one(self, fn, arg):
        return self.ex.submit(fn, arg).result()

    def close(self):
        self.ex.shutdown()


class DaskPeer:
    """dask.distributed: a LocalCluster of 2 worker processes x 1 thread."""

    def __init__(self):
        from dask.distributed import Client, LocalCluster

        self.cluster = LocalCluster(n_workers=PROCESSES, threads_per_worker=1, processes=True,
                                    dashboard_address=None)
        self.client = Client(self.cluster)
        self.client.wait_for_workers(PROCESSES)

    def map(self, fn, args):
        return self.client.gather(self.client.map(fn, args, pure=False))

    def one(self, fn, arg):
        return self.client.submit(fn, arg, pure=False).result()

    def close(self):
        self.client.close()
        self.cluster.close()


class RayPeer:
    """Ray: ray.init(num_cpus=2), one CPU per task."""

    def __init__(self):
        import ray

        self.ray = ray
        ray.init(num_cpus=PROCESSES, include_dashboard=False, log_to_driver=False)
        self.remote = {}

    def _fn(self, fn):
        if fn not in self.remote:
            self.remote[fn] = self.ray.remote(num_cpus=1)(fn)
        return self.remote[fn]

    def map(self, fn, args):
        f = self._fn(fn)
        return self.ray.get([f.remote(a) for a in args])

    def one(self, fn, arg):
        return self.ray.get(self._fn(fn).remote(arg))

    def close(self):
        self.ray.shutdown()


PEERS = {"mp": MpPeer, "ppe": PpePeer, "dask": DaskPeer, "ray": RayPeer}


def timed_map(peer, fn, args):
    """Runs fn over args on the peer; returns the wall seconds."""
    start = time.perf_counter()
    out = peer.map(fn, args)
    elapsed = time.perf_counter() - start
    if len(out) != len(args):
        sys.exit(f"error: {len(out)} results for {len(args)} tasks")
    return elapsed


def run(peer, workload, opts):
    """Measures one workload; returns its JSON record."""
    if workload == "noop":
        n = opts.n_noop
        secs = timed_map(peer, noop, list(range(n)))
        return {"n": n, "elapsed_s": secs, "value": n / secs}
    if workload in ("spin10", "spin1"):
        ms = 10 if workload == "spin10" else 1
        n = opts.n_spin10 if ms == 10 else opts.n_spin1
        secs = timed_map(peer, spin, [ms] * n)
        ideal = n * ms / 1000.0 / PROCESSES
        return {"n": n, "elapsed_s": secs, "value": ideal / secs}
    samples = []
    for i in range(opts.n_latency):
        start = time.perf_counter()
        peer.one(noop, i)
        samples.append((time.perf_counter() - start) * 1000.0)
    samples.sort()
    pct = lambda p: samples[min(int(len(samples) * p), len(samples) - 1)]  # noqa: E731
    return {"n": len(samples), "elapsed_s": sum(samples) / 1000.0, "value": pct(0.50),
            "p50_ms": pct(0.50), "p99_ms": pct(0.99)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("peer", choices=sorted(PEERS))
    parser.add_argument("workloads", nargs="+", choices=WORKLOADS + ("all",))
    parser.add_argument("--n-noop", type=int, default=20_000, help="no-op tasks")
    parser.add_argument("--n-spin10", type=int, default=800, help="10 ms tasks")
    parser.add_argument("--n-spin1", type=int, default=4_000, help="1 ms tasks")
    parser.add_argument("--n-latency", type=int, default=500, help="one-task round trips")
    opts = parser.parse_args()
    workloads = WORKLOADS if "all" in opts.workloads else opts.workloads
    peer = PEERS[opts.peer]()
    try:
        # Warm-up: every worker process started and has imported this module.
        peer.map(noop, list(range(4 * PROCESSES)))
        peer.map(spin, [1] * (2 * PROCESSES))
        for workload in workloads:
            record = {"peer": opts.peer, "workload": workload, **run(peer, workload, opts)}
            print(json.dumps(record), flush=True)
    finally:
        peer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
