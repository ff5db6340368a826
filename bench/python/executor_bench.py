#!/usr/bin/env python3
"""farm.Executor against Python's process pools, side by side in one run.

    python bench/python/executor_bench.py [--peers farm,ppe,mp,loky,dask,ray] [--json]

Each peer runs in its own child interpreter (this script with --one PEER), one after another,
with 2 worker processes of 1 thread, started and warmed up before any timing (every worker
process has run a task). The figures, those of issue 25:

- map_c1: 10,000 x a trivial function, map with chunksize 1 (items/s);
- map_c100: the same with chunksize 100 (items/s);
- spin10: 400 x a pure-Python function that burns 10 ms of its thread's CPU time, chunksize 1;
  parallel efficiency = ideal / elapsed, ideal = 400 x 10 ms / 2 processes;
- latency: one submit(f).result() round trip, p50 and p99 (ms), 300 times;
- first_use: the first call of a function never seen before (made with exec, so its bytes are
  new: pickle, upload, fetch, unpickle), submit(f).result(), p50 (ms) of 20 functions.

The peers: farm.Executor(workers=2) (a local farm: an in-process master and 2 Python worker
processes), concurrent.futures.ProcessPoolExecutor(2), multiprocessing.Pool(2),
loky.get_reusable_executor(2), Dask (LocalCluster, 2 processes x 1 thread) and Ray
(ray.init(num_cpus=2)). Dask and Ray have no chunksize: a chunk is one task that maps the
function over its items, as ProcessPoolExecutor does inside. A peer that cannot be imported
gets a column that says why. bench/peers/setup.sh makes a venv with loky, Dask and Ray; install
farm into it with `pip install ./python`.

Prints one JSON line per peer, then (unless --json) a Markdown table with each figure's ratio
to ProcessPoolExecutor's beside it (> 1 is better, for latency too: PPE's / the peer's).
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time

PROCESSES = 2
N_MAP = 10_000
N_SPIN = 400
SPIN_MS = 10
N_LATENCY = 300
N_FIRST = 20
# How long the worker processes get to come up during the warm-up.
WARM_S = 120.0
# How long one peer's child may take in all.
PEER_TIMEOUT_S = 900.0
PEERS = ("farm", "ppe", "mp", "loky", "dask", "ray")
NAMES = {
    "farm": "farm.Executor",
    "ppe": "ProcessPoolExecutor",
    "mp": "multiprocessing.Pool",
    "loky": "loky",
    "dask": "Dask",
    "ray": "Ray",
}


def noop(x):
    """The trivial function."""
    return x


def spin(ms):
    """Burns ms milliseconds of this thread's CPU time in pure Python."""
    end = time.thread_time() + ms / 1000.0
    while time.thread_time() < end:
        pass
    return ms


def whoami(_):
    """The worker's pid, after a little work so the other workers get some too."""
    spin(2)
    return os.getpid()


def run_chunk(fn, chunk):
    """One task of a chunked map on a peer without chunksize."""
    return [fn(x) for x in chunk]


def chunks(items, size):
    return [items[i:i + size] for i in range(0, len(items), size)]


def fresh_function(i):
    """A function defined in __main__ whose code was never seen: its pickle is new."""
    ns = {"__name__": "__main__"}
    exec(f"def fresh_{i}(x):\n    return x + {i}\n", ns)
    return ns[f"fresh_{i}"]


class ExecutorPeer:
    """A concurrent.futures.Executor with map(chunksize) and submit."""

    by_reference = False

    def __init__(self, ex):
        self.ex = ex

    def map(self, fn, items, chunksize):
        return list(self.ex.map(fn, items, chunksize=chunksize))

    def one(self, fn, arg):
        return self.ex.submit(fn, arg).result()

    def close(self):
        self.ex.shutdown(wait=True)


def make_farm():
    import farm

    return ExecutorPeer(farm.Executor(workers=PROCESSES, threads=1))


def make_ppe():
    from concurrent.futures import ProcessPoolExecutor

    peer = ExecutorPeer(ProcessPoolExecutor(PROCESSES))
    # Pickles functions by reference: one made after the workers started is not found there.
    peer.by_reference = True
    return peer


def make_loky():
    import loky

    return ExecutorPeer(loky.get_reusable_executor(max_workers=PROCESSES))


class MpPeer:
    by_reference = True

    def __init__(self):
        import multiprocessing

        self.pool = multiprocessing.Pool(PROCESSES)

    def map(self, fn, items, chunksize):
        return self.pool.map(fn, items, chunksize=chunksize)

    def one(self, fn, arg):
        return self.pool.apply_async(fn, (arg,)).get()

    def close(self):
        self.pool.close()
        self.pool.join()


class DaskPeer:
    by_reference = False

    def __init__(self):
        from dask.distributed import Client, LocalCluster

        self.cluster = LocalCluster(n_workers=PROCESSES, threads_per_worker=1, processes=True,
                                    dashboard_address=None)
        self.client = Client(self.cluster)
        self.client.wait_for_workers(PROCESSES)

    def map(self, fn, items, chunksize):
        if chunksize == 1:
            return self.client.gather(self.client.map(fn, items, pure=False))
        parts = chunks(items, chunksize)
        futures = self.client.map(run_chunk, [fn] * len(parts), parts, pure=False)
        return [x for part in self.client.gather(futures) for x in part]

    def one(self, fn, arg):
        return self.client.submit(fn, arg, pure=False).result()

    def close(self):
        self.client.close()
        self.cluster.close()


class RayPeer:
    by_reference = False

    def __init__(self):
        import ray

        self.ray = ray
        ray.init(num_cpus=PROCESSES, include_dashboard=False, log_to_driver=False)
        self.chunk = ray.remote(num_cpus=1)(run_chunk)
        self.remote = {}

    def _fn(self, fn):
        # One remote function per Python function, so only its first call exports it.
        if fn not in self.remote:
            self.remote[fn] = self.ray.remote(num_cpus=1)(fn)
        return self.remote[fn]

    def map(self, fn, items, chunksize):
        if chunksize == 1:
            f = self._fn(fn)
            return self.ray.get([f.remote(x) for x in items])
        parts = chunks(items, chunksize)
        done = self.ray.get([self.chunk.remote(fn, part) for part in parts])
        return [x for part in done for x in part]

    def one(self, fn, arg):
        return self.ray.get(self._fn(fn).remote(arg))

    def close(self):
        self.ray.shutdown()


MAKERS = {"farm": make_farm, "ppe": make_ppe, "mp": MpPeer, "loky": make_loky,
          "dask": DaskPeer, "ray": RayPeer}


def warm(peer):
    """Until every worker process has run a task (and the pool has run each kind of call)."""
    deadline = time.monotonic() + WARM_S
    seen = set()
    while len(seen) < PROCESSES:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(seen)} of {PROCESSES} workers ran a task in {WARM_S} s")
        seen.update(peer.map(whoami, list(range(8 * PROCESSES)), 1))
    peer.map(noop, list(range(200)), 100)
    peer.map(spin, [1] * (4 * PROCESSES), 1)
    peer.one(noop, 0)


def percentile(samples, p):
    ordered = sorted(samples)
    return ordered[min(int(len(ordered) * p), len(ordered) - 1)]


def measure(peer):
    """The figures of one started, warmed-up peer."""
    out = {}
    items = list(range(N_MAP))
    for key, chunksize in (("map_c1", 1), ("map_c100", 100)):
        start = time.perf_counter()
        got = peer.map(noop, items, chunksize)
        secs = time.perf_counter() - start
        if got != items:
            raise RuntimeError(f"{key}: wrong results")
        out[key] = N_MAP / secs
    start = time.perf_counter()
    got = peer.map(spin, [SPIN_MS] * N_SPIN, 1)
    secs = time.perf_counter() - start
    if got != [SPIN_MS] * N_SPIN:
        raise RuntimeError("spin10: wrong results")
    out["spin10"] = N_SPIN * SPIN_MS / 1000.0 / PROCESSES / secs
    out["spin10_s"] = secs
    samples = []
    for i in range(N_LATENCY):
        start = time.perf_counter()
        if peer.one(noop, i) != i:
            raise RuntimeError("latency: wrong result")
        samples.append((time.perf_counter() - start) * 1000.0)
    out["p50_ms"] = percentile(samples, 0.50)
    out["p99_ms"] = percentile(samples, 0.99)
    if peer.by_reference:
        out["first_use_ms"] = None
        out["first_use_note"] = "pickles functions by name: a new one is not found in the workers"
    else:
        samples = []
        for i in range(N_FIRST):
            fn = fresh_function(1000 * os.getpid() + i)
            start = time.perf_counter()
            if peer.one(fn, 1) != 1 + 1000 * os.getpid() + i:
                raise RuntimeError("first use: wrong result")
            samples.append((time.perf_counter() - start) * 1000.0)
        out["first_use_ms"] = percentile(samples, 0.50)
    return out


def one(name):
    """Runs one peer in this process and prints its JSON line."""
    record = {"peer": name}
    try:
        peer = MAKERS[name]()
    except ImportError as e:
        record["missing"] = f"{type(e).__name__}: {e}"
        print(json.dumps(record), flush=True)
        return 0
    try:
        start = time.perf_counter()
        warm(peer)
        record["warm_s"] = time.perf_counter() - start
        record.update(measure(peer))
    except Exception as e:  # a peer that fails is reported, not fatal to the others
        record["error"] = f"{type(e).__name__}: {e}"
    finally:
        peer.close()
    print(json.dumps(record), flush=True)
    return 0


def child(name):
    """Runs one peer in a child interpreter; its record, or why it failed."""
    cmd = [sys.executable, os.path.abspath(__file__), "--one", name]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=PEER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {"peer": name, "error": f"did not finish in {PEER_TIMEOUT_S:.0f} s"}
    for line in reversed(done.stdout.splitlines()):
        try:
            return json.loads(line)
        except ValueError:
            continue
    last = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
    return {"peer": name, "error": last[:300]}


def cell(record, key, fmt, ppe, higher_is_better=True):
    """A figure with its ratio to ProcessPoolExecutor's."""
    if "missing" in record or "error" in record:
        return "—"
    value = record.get(key)
    if value is None:
        return "n/a"
    text = fmt(value)
    base = ppe.get(key) if ppe else None
    if base and value and record["peer"] != "ppe":
        ratio = value / base if higher_is_better else base / value
        text += f" ({ratio:.2f}×)"
    return text


def table(records):
    ppe = next((r for r in records if r["peer"] == "ppe" and "error" not in r), None)
    head = "| figure | goal | " + " | ".join(NAMES[r["peer"]] for r in records) + " |"
    lines = [head, "|" + " --- |" * (2 + len(records))]
    rate = lambda v: f"{v:,.0f}/s"  # noqa: E731
    pct = lambda v: f"{100 * v:.0f} %"  # noqa: E731
    ms = lambda v: f"{v:.2f} ms"  # noqa: E731
    rows = [
        ("10,000 × trivial, map chunksize 1 (items/s)", "≥ PPE", "map_c1", rate, True),
        ("the same, chunksize 100 (items/s)", "≥ 1.5 × PPE", "map_c100", rate, True),
        ("400 × 10 ms pure Python, efficiency", "≥ 95 %, ≥ PPE", "spin10", pct, True),
        ("submit(f).result() p50", "≤ 1 ms", "p50_ms", ms, False),
        ("submit(f).result() p99", "", "p99_ms", ms, False),
        ("first use of a new function, p50", "reported", "first_use_ms", ms, False),
    ]
    for label, goal, key, fmt, up in rows:
        cells = [cell(r, key, fmt, ppe, up) for r in records]
        lines.append(f"| {label} | {goal} | " + " | ".join(cells) + " |")
    for r in records:
        why = r.get("missing") or r.get("error") or r.get("first_use_note")
        if why:
            lines.append(f"\n{NAMES[r['peer']]}: {why}")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", default=",".join(PEERS),
                        help="comma-separated, of " + ", ".join(PEERS))
    parser.add_argument("--json", action="store_true", help="only the JSON lines")
    parser.add_argument("--one", choices=PEERS, help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.one:
        return one(opts.one)
    names = [p for p in opts.peers.split(",") if p]
    bad = [p for p in names if p not in PEERS]
    if bad:
        parser.error(f"unknown peer {bad[0]!r}: choose from {', '.join(PEERS)}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(json.dumps({"python": sys.version.split()[0], "machine": platform.machine(),
                      "cpus": os.cpu_count(), "load": load}), flush=True)
    records = []
    for name in names:
        record = child(name)
        print(json.dumps(record), flush=True)
        records.append(record)
    if not opts.json:
        print()
        print(table(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
