#!/usr/bin/env python3
"""Abuse run for farm: throws hostile input at one master and samples its resident memory.

The script starts `farm master --listen 127.0.0.1:0 --workers 2 --threads 1 --allow-exec
--token ...` (plus any --master-arg; its local workers inherit FARM_WASM_MAX_MEMORY_MIB, 16 by
default), reads the address it announces, and then, one class after another:

* huge inputs: three submissions of 15 MB of input lines (128 bytes each);
* huge params: a 15 MB param name and a 15 MB param value;
* many jobs: 2,000 small jobs submitted at once by 8 threads, then listed;
* huge results: a 6.7 MB result read back twice, then a job whose result passes the
  per-job limit, while another client times its calls (the slowest is printed);
* garbage: random bytes on the TCP port, and random bytes as a Submit request body;
* bad tokens: 2,000 calls with a wrong token;
* many watchers: 500 Watch streams with shard results on a running job, abandoned;
* retries: a submit with retries 4294967295;

and, with the token (which is also the worker token) held by the attacker (issue 22):

* fetch flood: a fake worker (the generated WorkerService client) registers with the wasm
  kind, asks 1,000 times for an uploaded 1 MiB module and never reads its stream; expected:
  the master drops it ("worker reads too slowly");
* compile bomb: a 6 MB module of 1,000,000 trivial functions; expected: PutModule refuses it
  with INVALID_ARGUMENT (an accepted one is not run: the refusal is what is checked);
* table bomb: a module of 100 tables of 1,000,000 funcrefs; expected: its shard fails
  (--retries 0, --shard-timeout 5 s), or the upload is refused with INVALID_ARGUMENT;
* start loop: a module whose start function is `loop br 0`; expected: its shard fails within
  the shard timeout, or the upload is refused with INVALID_ARGUMENT;
* exec stdout flood: an exec job `head -c 400000000 /dev/zero`; expected: its shard fails
  with an "output limit" error.

The modules are built here, by a small WebAssembly binary encoder. After each of these five
classes a sanity job (noop, 2 shards) must succeed within 1 s of its submit.

A thread reads VmRSS from /proc/PID/status of the master every 20 ms, another that of each of
its children (the local workers) every 50 ms. The script prints each class's outcome and the
peaks, stops the master (which stops its workers), and exits non-zero if the master's peak
passed --limit-mib, a worker's passed --worker-limit-mib, or an outcome was not the expected
one. --only runs some classes. Linux only; needs python3 with grpcio and grpcio-tools
(pip install -r examples/python/requirements.txt). Example:

    cargo build -p farm && python3 scripts/abuse.py --farm target/debug/farm
    python3 scripts/abuse.py --farm target/debug/farm --only fetch_flood,exec_flood
"""

import argparse
import os
import random
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "examples", "python"))
sys.path.insert(0, HERE)
import abuse_worker_token as worker_token  # noqa: E402

TOKEN = "abuse-token"
MB = 1_000_000
# The flags the figure in RELIABILITY.md was measured with: they bound what the master holds.
DEFAULT_MASTER_ARGS = ["--memory-budget-mib", "24", "--keep-finished-mib", "32"]
# The local workers' wasm memory cap (they inherit the environment), unless one is set.
WASM_MAX_MEMORY_MIB = os.environ.get("FARM_WASM_MAX_MEMORY_MIB", "16")
# The worker's limit on a shard's output (exec's stdout), MiB.
RESULT_LIMIT_MIB = 32


def rss_mib(pid):
    """A process's VmRSS in MiB (OSError once it is gone)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    return 0


class Sampler(threading.Thread):
    """Samples a process's VmRSS (MiB) until stopped; keeps the peak."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.last, self.running = pid, 0, 0, True

    def run(self):
        while self.running:
            try:
                self.last = rss_mib(self.pid)
            except OSError:
                return
            self.peak = max(self.peak, self.last)
            time.sleep(0.02)


class ChildSampler(threading.Thread):
    """Samples the VmRSS (MiB) of every child of a process (its local workers, restarted ones
    included) every 50 ms until stopped; keeps the peak and whose it was."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.peak_pid, self.running = pid, 0, None, True

    def children(self):
        kids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    # The fields after the command's closing parenthesis: state, then ppid.
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == self.pid:
                        kids.append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
        return kids

    def run(self):
        while self.running:
            for kid in self.children():
                try:
                    rss = rss_mib(kid)
                except OSError:
                    continue
                if rss > self.peak:
                    self.peak, self.peak_pid = rss, kid
            time.sleep(0.05)


class Run:
    def __init__(self, o, pb, rpc):
        import grpc

        self.grpc, self.pb, self.rpc, self.o = grpc, pb, rpc, o
        argv = [o.farm, "master", "--listen", "127.0.0.1:0", "--workers", "2", "--threads", "1", "--allow-exec"]
        argv += ["--token", TOKEN] + (o.master_arg if o.master_arg is not None else DEFAULT_MASTER_ARGS)
        self.argv = argv
        env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "warn"), FARM_WASM_MAX_MEMORY_MIB=WASM_MAX_MEMORY_MIB)
        self.log = open(os.path.join(o.logdir, "master.log"), "wb")
        self.master = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self.log, env=env, text=True)
        line = self.master.stdout.readline()
        if "listening on" not in line:
            raise SystemExit(f"master did not announce its address: {line!r}")
        self.addr = line.split()[-1].split("://")[-1]
        self.sampler = Sampler(self.master.pid)
        self.sampler.start()
        self.workers = ChildSampler(self.master.pid)
        self.workers.start()
        self.stub = self.stub_with(TOKEN)
        self.failures = []
        self.rows = []

    def stub_with(self, token):
        opts = [("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)]
        channel = self.grpc.insecure_channel(self.addr, options=opts)
        stub = self.rpc.FarmServiceStub(channel)
        stub.md = [("authorization", f"Bearer {token}")]
        return stub

    def call(self, stub, method, req, **kw):
        """A call; returns (reply, None) or (None, (code name, message))."""
        try:
            return getattr(stub, method)(req, metadata=stub.md, **kw), None
        except self.grpc.RpcError as e:
            return None, (e.code().name, e.details() or "")

    def submit(self, stub=None, **spec):
        return self.call(stub or self.stub, "Submit", self.pb.SubmitRequest(spec=self.pb.JobSpec(**spec)))

    def wait_final(self, job, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s, err = self.call(self.stub, "Get", self.pb.GetRequest(job_id=job))
            if err:
                return None, err
            if s.state not in (self.pb.JOB_STATE_QUEUED, self.pb.JOB_STATE_RUNNING):
                return s, None
            time.sleep(0.05)
        return None, ("TIMEOUT", f"job {job} did not end in {timeout} s")

    def row(self, cls, tried, outcome, ok=True):
        peak, workers = self.sampler.peak, self.workers.peak
        print(f"[{'ok' if ok else 'FAIL'}] {cls}: {tried} -> {outcome} (peaks so far: master {peak} MiB, worker {workers} MiB)", flush=True)
        self.rows.append((cls, tried, outcome))
        if not ok:
            self.failures.append(f"{cls}: {outcome}")

    def stop(self):
        self.master.terminate()
        try:
            self.master.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.master.kill()
            self.master.wait()
        self.sampler.running = False
        self.workers.running = False


def huge_inputs(r):
    lines = [f"{i:0127d}" for i in range(15 * MB // 130)]  # 15 MB on the wire
    outcomes = []
    for _ in range(3):
        reply, err = r.submit(kind="noop", inputs=lines)
        outcomes.append(f"job {reply.job_id}" if reply else f"{err[0]}: {err[1][:90]}")
        if reply:
            r.call(r.stub, "Cancel", r.pb.CancelRequest(job_id=reply.job_id))
    ok = all(o.startswith("job") or "memory budget" in o for o in outcomes)
    r.row("2", "3 submissions of 15 MB of inputs (115k lines of 128 bytes)", "; ".join(outcomes), ok)


def huge_params(r):
    big = "p" * (15 * MB)
    for what, params in (("name", {big: "1"}), ("value", {"rounds": big})):
        _, err = r.submit(kind="hashchain", start=0, end=10, shard_size=1, params=params)
        ok = err is not None and err[0] == "INVALID_ARGUMENT" and len(err[1]) < 1000
        r.row("2, 4", f"a 15 MB param {what}", f"{err[0] if err else 'accepted'}, message of {len(err[1]) if err else 0} bytes", ok)


def many_jobs(r):
    codes, lock = {}, threading.Lock()

    def submit_some(n):
        stub = r.stub_with(TOKEN)
        for _ in range(n):
            reply, err = r.submit(stub, kind="noop", start=0, end=10, shard_size=1)
            with lock:
                key = "OK" if reply else err[0]
                codes[key] = codes.get(key, 0) + 1

    threads = [threading.Thread(target=submit_some, args=(250,)) for _ in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    jobs, _ = r.call(r.stub, "List", r.pb.ListRequest())
    listed = len(jobs.jobs) if jobs else 0
    r.row("2", "2,000 small jobs from 8 clients at once, then List", f"{codes}, {listed} listed", codes.get("OK") == 2000)


class Prober(threading.Thread):
    """Times Get of a small job over and over from its own connection."""

    def __init__(self, r, job):
        super().__init__(daemon=True)
        self.r, self.job, self.slowest, self.n, self.running = r, job, 0.0, 0, True
        self.stub = r.stub_with(TOKEN)

    def run(self):
        while self.running:
            t = time.monotonic()
            self.r.call(self.stub, "Get", self.r.pb.GetRequest(job_id=self.job))
            self.slowest = max(self.slowest, time.monotonic() - t)
            self.n += 1
            time.sleep(0.02)


def read_results(r, job_id):
    """Streams a job's result with Results and counts its items."""
    n = 0
    for chunk in r.stub.Results(r.pb.ResultsRequest(job_id=job_id), metadata=r.stub.md, timeout=60):
        n += len(chunk.items_json)
    return n


def huge_results(r):
    small, _ = r.submit(kind="noop", start=0, end=1, shard_size=1)
    prober = Prober(r, small.job_id)
    prober.start()
    big, err = r.submit(kind="hashchain", start=0, end=100_000, shard_size=1_000)
    s, err = r.wait_final(big.job_id)
    sizes = []
    for _ in range(2):
        got, err = r.call(r.stub, "Get", r.pb.GetRequest(job_id=big.job_id))
        sizes.append(read_results(r, big.job_id) if got else err)
    ok = s is not None and s.state == r.pb.JOB_STATE_SUCCEEDED and sizes[0] == sizes[1] == 100_000
    r.row("3", "a 6.7 MB result, streamed twice (Results)", f"succeeded, read {sizes[0]} items twice", ok)
    over, _ = r.submit(kind="hashchain", start=0, end=200_000, shard_size=2_000)
    s, err = r.wait_final(over.job_id)
    ok = s is not None and s.state == r.pb.JOB_STATE_SUCCEEDED and s.result_in_store
    r.row("3", "a 13 MB result, over --inline-result-mib (1)", "succeeded, kept in the store only" if ok else f"{s or err}", ok)
    prober.running = False
    prober.join()
    ok = prober.slowest < 1.0
    r.row("3", "another client's Get meanwhile", f"slowest of {prober.n}: {prober.slowest * 1000:.0f} ms", ok)


def garbage(r):
    host, port = r.addr.rsplit(":", 1)
    for _ in range(20):
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(random.randbytes(64 * 1024))
    call = r.stub_with(TOKEN)
    channel = r.grpc.insecure_channel(r.addr)
    raw = channel.unary_unary("/farm.v1.FarmService/Submit", request_serializer=None, response_deserializer=None)
    codes = set()
    for _ in range(20):
        try:
            raw(random.randbytes(4096), metadata=call.md)
            codes.add("OK")
        except r.grpc.RpcError as e:
            codes.add(e.code().name)
    alive, err = r.call(r.stub, "ListWorkers", r.pb.ListWorkersRequest())
    r.row("7", "20 x 64 KiB of random bytes on the port, 20 random Submit bodies", f"{sorted(codes)}; still serving: {err is None}", err is None)


def bad_tokens(r):
    stub = r.stub_with("wrong")
    codes = {}
    for _ in range(2000):
        _, err = r.call(stub, "List", r.pb.ListRequest())
        key = err[0] if err else "OK"
        codes[key] = codes.get(key, 0) + 1
    r.log.flush()
    with open(r.log.name, "rb") as f:
        warns = sum(1 for line in f if b"WARN" in line and b"token" in line.lower())
    r.row("7", "2,000 calls with a wrong token", f"{codes}, {warns} WARN lines about tokens", codes.get("UNAUTHENTICATED") == 2000)


def many_watchers(r):
    job, _ = r.submit(kind="spin", start=0, end=400, shard_size=1, params={"ms": "10"})
    streams = []
    for _ in range(500):
        stream = r.stub.Watch(r.pb.WatchRequest(job_id=job.job_id, shard_results=True), metadata=r.stub.md)
        streams.append(stream)
    time.sleep(1)
    for s in streams:
        s.cancel()
    s, err = r.wait_final(job.job_id)
    ok = s is not None and s.state == r.pb.JOB_STATE_SUCCEEDED
    r.row("2", "500 watch streams with shard results, abandoned", f"job {'succeeded' if ok else err}", ok)


def retries(r):
    _, err = r.submit(kind="noop", start=0, end=10, shard_size=1, retries=4294967295)
    ok = err is not None and err[0] == "INVALID_ARGUMENT"
    r.row("6", "retries 4294967295", f"{err[0] if err else 'accepted'}: {err[1][:80] if err else ''}", ok)


# Every class, by name (for --only), in the order they run.
PHASES = {f.__name__: f for f in (huge_inputs, huge_params, many_jobs, huge_results, garbage, bad_tokens, many_watchers, retries)}
PHASES.update(worker_token.CLASSES)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--farm", default=os.path.join(HERE, "..", "target", "debug", "farm"))
    p.add_argument("--limit-mib", type=int, default=100, help="fail if the master's peak RSS passes this")
    worker_limit = int(WASM_MAX_MEMORY_MIB) + RESULT_LIMIT_MIB + 64
    p.add_argument(
        "--worker-limit-mib", type=int, default=worker_limit,
        help=f"fail if a worker's peak RSS passes this (default: its caps, {WASM_MAX_MEMORY_MIB} MiB of wasm memory and a {RESULT_LIMIT_MIB} MiB output, plus 64: {worker_limit})",
    )
    p.add_argument("--only", help=f"comma-separated classes to run (default: all): {','.join(PHASES)}")
    p.add_argument("--master-arg", action="append", help=f"flag for farm master (default: {' '.join(DEFAULT_MASTER_ARGS)})")
    p.add_argument("--logdir", default=None)
    o = p.parse_args()
    phases = o.only.split(",") if o.only else list(PHASES)
    unknown = [c for c in phases if c not in PHASES]
    if unknown:
        p.error(f"unknown class {', '.join(unknown)}: one of {', '.join(PHASES)}")
    import tempfile

    o.logdir = o.logdir or tempfile.mkdtemp(prefix="farm-abuse-")
    from farm_client import load_stubs

    pb, rpc = load_stubs()
    r = Run(o, pb, rpc)
    print("master:", " ".join(r.argv[1:]), flush=True)
    try:
        time.sleep(1)
        print(f"master at start: {r.sampler.last} MiB", flush=True)
        for phase in phases:
            PHASES[phase](r)
    finally:
        r.stop()
    print(f"peak resident memory of the master: {r.sampler.peak} MiB (limit {o.limit_mib} MiB); logs in {o.logdir}")
    print(f"peak resident memory of a worker: {r.workers.peak} MiB, pid {r.workers.peak_pid} (limit {o.worker_limit_mib} MiB)")
    if r.sampler.peak > o.limit_mib:
        r.failures.append(f"peak {r.sampler.peak} MiB over {o.limit_mib} MiB")
    if r.workers.peak > o.worker_limit_mib:
        r.failures.append(f"a worker's peak {r.workers.peak} MiB over {o.worker_limit_mib} MiB")
    if r.failures:
        print("FAILED:", *r.failures, sep="\n  ")
        sys.exit(1)


if __name__ == "__main__":
    main()
