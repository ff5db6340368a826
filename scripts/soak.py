#!/usr/bin/env python3
"""Soak test for farm: real jobs with exactly known results while workers are abused.

The script starts one `farm master` on a free loopback port and N remote `farm worker`
processes (one thread pool of T threads each), then for --duration seconds runs two loops
side by side:

* a job loop that submits jobs one or two at a time with
  `farm --master URL submit KIND ... --wait --json` and checks each result against a value
  computed here in Python: `primes` (sieve), `spin` and `noop` (number of indices), and
  `hashchain` (SHA-256 chains with hashlib);
* a chaos loop that, every 1-3 s, picks a random worker and either kills it with SIGKILL
  (a replacement is started), freezes it with SIGSTOP for 1-4 s and then SIGCONTs it, or
  drains it with SIGTERM (it must exit 0 within 40 s; a replacement is started at once).
  The master is never touched.

At the end it stops the chaos, waits for the jobs in flight, stops every process it started
(SIGTERM, then SIGKILL after 10 s), checks that none is left, and prints a summary. The exit
status is non-zero when a result was wrong, a job was lost, a drained worker did not exit 0,
or a process was left behind.

All traffic stays on 127.0.0.1. Every process gets RUST_LOG=warn and writes its stderr to a
log file in a temporary directory (printed at the end), next to `chaos.log` (what the chaos
did, with times) and `jobs.log` (every job, its command and its outcome).

Python 3 standard library only. Example:

    python3 scripts/soak.py --duration 180 --workers 4 --threads 1 --seed 1
"""

import argparse
import datetime
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time

SUBMIT_TIMEOUT = 120.0  # seconds a `submit --wait` may take
DRAIN_EXIT_TIMEOUT = 40.0  # seconds a drained worker gets to exit
STOP_GRACE = 10.0  # seconds between SIGTERM and SIGKILL at the end
MASTER_START_TIMEOUT = 15.0
MIN_WORKER_AGE = 1.5  # chaos leaves alone workers younger than this (still starting up)
PRIME_LIMIT = 2_000_000


def now_stamp():
    # UTC, like the timestamps in farm's own logs.
    return datetime.datetime.now(datetime.timezone.utc).strftime("%H:%M:%S.%f")[:-3]


class Log:
    """A line-oriented log file shared by threads."""

    def __init__(self, path):
        self.path = path
        self._f = open(path, "a", buffering=1)
        self._lock = threading.Lock()

    def write(self, line):
        with self._lock:
            self._f.write(f"{now_stamp()} {line}\n")

    def close(self):
        with self._lock:
            self._f.close()


class Procs:
    """Every process the script starts, so that each one is stopped on any exit path."""

    def __init__(self, tag):
        self._lock = threading.Lock()
        self._all = []  # (Popen, role, name)
        self._closed = False
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FARM_")}
        self.env["RUST_LOG"] = "warn"
        self.env["NO_COLOR"] = "1"
        # Marks every process of this run, so a final scan of /proc can find stragglers.
        self.env["FARM_SOAK_RUN"] = tag
        self.tag = tag

    def spawn(self, argv, role, name, stdout, stderr):
        with self._lock:
            if self._closed:
                raise RuntimeError("shutting down: no new process")
            p = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                env=self.env,
                # Own session: a Ctrl-C on the terminal reaches only this script, which then
                # stops its processes in order.
                start_new_session=True,
            )
            self._all.append((p, role, name))
            return p

    def close(self):
        with self._lock:
            self._closed = True
            return list(self._all)

    def closed(self):
        with self._lock:
            return self._closed


def signal_proc(p, sig):
    try:
        if p.poll() is None:
            p.send_signal(sig)
    except (ProcessLookupError, OSError):
        pass


def wait_all(procs, timeout):
    deadline = time.monotonic() + timeout
    for p in procs:
        left = max(0.0, deadline - time.monotonic())
        try:
            p.wait(timeout=left)
        except subprocess.TimeoutExpired:
            pass


def tagged_pids(tag):
    """Live processes (not zombies) whose environment carries this run's tag."""
    needle = f"FARM_SOAK_RUN={tag}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle not in f.read().split(b"\0"):
                    continue
            with open(f"/proc/{entry}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            if state != "Z":
                found.append(int(entry))
        except OSError:
            continue
    return found


# ---------------------------------------------------------------------------------------------
# Expected results


def prime_sieve(limit):
    sieve = bytearray([1]) * limit
    sieve[0:2] = b"\0\0"
    for i in range(2, int(limit**0.5) + 1):
        if sieve[i]:
            sieve[i * i :: i] = bytes(len(range(i * i, limit, i)))
    return sieve


def hashchain(i, rounds):
    state = hashlib.sha256(str(i).encode()).digest()
    for _ in range(rounds - 1):
        state = hashlib.sha256(state).digest()
    return state.hex()


class JobMaker:
    """Random jobs whose exact results are known."""

    def __init__(self, rng):
        self.rng = rng
        self.sieve = prime_sieve(PRIME_LIMIT)

    def make(self):
        rng = self.rng
        kind = rng.choice(["primes", "spin", "noop", "hashchain"])
        if kind == "primes":
            a = rng.randrange(0, PRIME_LIMIT - 1000)
            b = rng.randrange(a + 1000, PRIME_LIMIT + 1)
            size = rng.randint(1_000, 50_000)
            args = ["--range", f"{a}..{b}", "--shard-size", str(size)]
            expected = self.sieve[a:b].count(1)
        elif kind == "spin":
            ms = rng.randint(2, 20)
            n = rng.randint(20, 3000 // ms)  # at most ~3 CPU-seconds in all
            size = rng.randint(1, max(1, 300 // ms))  # shards of at most ~0.3 s
            args = ["--range", f"0..{n}", "--shard-size", str(size), "--param", f"ms={ms}"]
            expected = n
        elif kind == "noop":
            n = rng.randint(10_000, 100_000)
            args = ["--range", f"0..{n}", "--shard-size", "100"]
            expected = n
        else:
            rounds = rng.randint(1, 200)
            size = rng.randint(1, 16)
            args = ["--range", "0..64", "--shard-size", str(size), "--param", f"rounds={rounds}"]
            expected = [hashchain(i, rounds) for i in range(64)]
        return kind, args, expected


# ---------------------------------------------------------------------------------------------
# The soak


class Soak:
    def __init__(self, opts):
        self.o = opts
        self.tag = f"{os.getpid()}-{time.time_ns()}"
        self.logdir = tempfile.mkdtemp(prefix="farm-soak-")
        self.procs = Procs(self.tag)
        self.chaos_log = Log(os.path.join(self.logdir, "chaos.log"))
        self.jobs_log = Log(os.path.join(self.logdir, "jobs.log"))
        self.lock = threading.Lock()
        self.stop_chaos = threading.Event()
        self.stop_jobs = threading.Event()
        self.master = None
        self.url = None
        self.workers = {}  # name -> {"proc", "started"}: the ones in service
        self.next_worker = 0
        self.drain_threads = []
        self.logfiles = []
        # figures
        self.jobs_run = 0
        self.wrong = 0
        self.lost = 0
        self.reruns = 0
        self.killed = 0
        self.stopped = 0
        self.drained = 0
        self.drain_bad = 0
        self.unexpected = []  # workers that exited without the chaos asking
        self.problems = []  # one line per wrong or lost job, per bad drain
        self.master_died = None
        self.left = 0
        self.final_codes = {}

    # -- processes --------------------------------------------------------------------------

    def _logfile(self, name):
        f = open(os.path.join(self.logdir, f"{name}.log"), "ab")
        self.logfiles.append(f)
        return f

    def start_master(self):
        out_path = os.path.join(self.logdir, "master.stdout")
        out = open(out_path, "wb")
        self.logfiles.append(out)
        argv = [self.o.farm, "master", "--listen", "127.0.0.1:0", "--heartbeat", self.o.heartbeat]
        self.master = self.procs.spawn(argv, "master", "master", out, self._logfile("master"))
        deadline = time.monotonic() + MASTER_START_TIMEOUT
        prefix = "farm master listening on "
        while time.monotonic() < deadline:
            with open(out_path) as f:
                line = f.readline()
            if line.endswith("\n"):
                if not line.startswith(prefix):
                    raise RuntimeError(f"unexpected first line from the master: {line!r}")
                url = line[len(prefix) :].strip()
                if not url.startswith("http://127.0.0.1:"):
                    raise RuntimeError(f"master is not on 127.0.0.1: {url}")
                self.url = url
                return
            if self.master.poll() is not None:
                raise RuntimeError(f"master exited with {self.master.returncode} at start")
            time.sleep(0.05)
        raise RuntimeError("master did not print its address in time")

    def start_worker(self):
        """Starts one worker; the caller holds self.lock."""
        name = f"w{self.next_worker}"
        self.next_worker += 1
        argv = [
            self.o.farm, "worker", "--master", self.url,
            "--threads", str(self.o.threads), "--name", name,
        ]
        log = self._logfile(name)
        p = self.procs.spawn(argv, "worker", name, log, log)
        self.workers[name] = {"proc": p, "started": time.monotonic()}
        self.chaos_log.write(f"start {name} pid {p.pid}")
        return name

    # -- the job loop -----------------------------------------------------------------------

    def run_job(self, kind, args, expected):
        argv = [self.o.farm, "--master", self.url, "submit", kind, *args, "--wait", "--json"]
        cmd = " ".join(argv[3:])
        t0 = time.monotonic()
        try:
            p = self.procs.spawn(argv, "client", kind, subprocess.PIPE, subprocess.PIPE)
        except RuntimeError:
            return
        try:
            out, err = p.communicate(timeout=SUBMIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate(timeout=10)
            self.job_done(cmd, "lost", f"no answer within {SUBMIT_TIMEOUT:.0f} s", None, t0)
            return
        if p.returncode < 0 and self.procs.closed():
            self.jobs_log.write(f"aborted (client stopped at shutdown) :: {cmd}")
            return
        out = out.decode(errors="replace").strip()
        err = err.decode(errors="replace").strip()
        try:
            status = json.loads(out.splitlines()[-1]) if out else None
        except ValueError:
            status = None
        if not isinstance(status, dict):
            why = f"exit {p.returncode}, stdout {out[:200]!r}, stderr {err[:500]!r}"
            self.job_done(cmd, "lost", why, None, t0)
            return
        reruns = int(status.get("reruns") or 0)
        job = status.get("job")
        if status.get("state") != "succeeded":
            why = f"job {job} {status.get('state')}: {status.get('error')} (exit {p.returncode})"
            self.job_done(cmd, "lost", why, reruns, t0)
        elif status.get("result") != expected:
            got = json.dumps(status.get("result"))[:200]
            want = json.dumps(expected)[:200]
            self.job_done(cmd, "wrong", f"job {job}: result {got}, expected {want}", reruns, t0)
        else:
            self.job_done(cmd, "ok", f"job {job}", reruns, t0)

    def job_done(self, cmd, verdict, detail, reruns, t0):
        secs = time.monotonic() - t0
        with self.lock:
            self.jobs_run += 1
            self.reruns += reruns or 0
            if verdict == "wrong":
                self.wrong += 1
            elif verdict == "lost":
                self.lost += 1
            if verdict != "ok":
                self.problems.append(f"{now_stamp()} {verdict}: {cmd}: {detail}")
        self.jobs_log.write(f"{verdict} {secs:.2f}s reruns={reruns} {detail} :: {cmd}")

    def job_loop(self, rng):
        maker = JobMaker(rng)
        while not self.stop_jobs.is_set() and self.master.poll() is None:
            batch = [maker.make() for _ in range(rng.choice([1, 2]))]
            threads = [
                threading.Thread(target=self.run_job, args=job, daemon=True) for job in batch
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(SUBMIT_TIMEOUT + 15)

    # -- the chaos loop ---------------------------------------------------------------------

    def check_processes(self):
        """Notes (and replaces) workers that exited on their own; notes a dead master."""
        if self.master.poll() is not None and self.master_died is None:
            self.master_died = self.master.returncode
            self.chaos_log.write(f"MASTER EXITED with {self.master.returncode}")
        if self.master_died is not None:
            return  # no replacements: the run is over
        with self.lock:
            for name, w in list(self.workers.items()):
                rc = w["proc"].poll()
                if rc is not None:
                    del self.workers[name]
                    self.unexpected.append(f"{name} pid {w['proc'].pid} exited with {rc}")
                    self.chaos_log.write(f"UNEXPECTED EXIT {name} rc {rc}; replacing it")
                    self.start_worker()

    def pause(self, seconds):
        return self.stop_chaos.wait(seconds)

    def watch_drain(self, name, p, t0):
        try:
            rc = p.wait(timeout=DRAIN_EXIT_TIMEOUT)
            how = f"exited with {rc}"
        except subprocess.TimeoutExpired:
            rc = None
            how = f"still running after {DRAIN_EXIT_TIMEOUT:.0f} s, killed"
            signal_proc(p, signal.SIGKILL)
        secs = time.monotonic() - t0
        self.chaos_log.write(f"drained {name} pid {p.pid} {how} after {secs:.2f} s")
        if rc != 0:
            with self.lock:
                self.drain_bad += 1
                self.problems.append(f"{now_stamp()} drain: {name} pid {p.pid} {how}")

    def chaos_loop(self, rng):
        try:
            self._chaos_loop(rng)
        except RuntimeError as e:  # no new process once shutting down (Ctrl-C)
            self.chaos_log.write(f"chaos stopped: {e}")

    def _chaos_loop(self, rng):
        while not self.pause(rng.uniform(1.0, 3.0)):
            self.check_processes()
            if self.master_died is not None:
                return
            with self.lock:
                ready = sorted(
                    n for n, w in self.workers.items()
                    if time.monotonic() - w["started"] >= MIN_WORKER_AGE
                )
            if not ready:
                continue
            name = rng.choice(ready)
            action = rng.choice(["kill", "stop", "drain"])
            p = self.workers[name]["proc"]
            if action == "kill":
                with self.lock:
                    del self.workers[name]
                    signal_proc(p, signal.SIGKILL)
                    self.killed += 1
                    self.chaos_log.write(f"kill -9 {name} pid {p.pid}")
                    try:
                        p.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        self.chaos_log.write(f"{name} pid {p.pid} not dead 10 s after SIGKILL")
                    self.start_worker()
            elif action == "stop":
                secs = rng.uniform(1.0, 4.0)
                with self.lock:
                    self.stopped += 1
                    # Out of the pool for the chaos while frozen.
                    entry = self.workers.pop(name)
                signal_proc(p, signal.SIGSTOP)
                self.chaos_log.write(f"SIGSTOP {name} pid {p.pid} for {secs:.2f} s")
                time.sleep(secs)  # not cut short: a frozen worker is always thawed
                signal_proc(p, signal.SIGCONT)
                self.chaos_log.write(f"SIGCONT {name} pid {p.pid}")
                with self.lock:
                    self.workers[name] = entry
            else:
                with self.lock:
                    del self.workers[name]
                    self.drained += 1
                    signal_proc(p, signal.SIGTERM)
                    self.chaos_log.write(f"SIGTERM (drain) {name} pid {p.pid}")
                    self.start_worker()
                t = threading.Thread(
                    target=self.watch_drain, args=(name, p, time.monotonic()), daemon=True
                )
                t.start()
                self.drain_threads.append(t)
        self.check_processes()

    # -- the whole run ----------------------------------------------------------------------

    def run(self):
        seed = self.o.seed
        self.start_master()
        self.chaos_log.write(f"master pid {self.master.pid} at {self.url}")
        with self.lock:
            for _ in range(self.o.workers):
                self.start_worker()
        jobs = threading.Thread(
            target=self.job_loop, args=(random.Random(f"{seed}/jobs"),), daemon=True
        )
        chaos = threading.Thread(
            target=self.chaos_loop, args=(random.Random(f"{seed}/chaos"),), daemon=True
        )
        jobs.start()
        chaos.start()
        deadline = time.monotonic() + self.o.duration
        while time.monotonic() < deadline and self.master.poll() is None:
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        if self.master.poll() is not None:
            self.master_died = self.master.returncode
            self.chaos_log.write(f"MASTER EXITED with {self.master_died}: stopping the run")
        else:
            self.chaos_log.write("duration over: stopping the chaos")
        self.stop_chaos.set()
        self.stop_jobs.set()
        join(chaos, 15)  # a SIGSTOP in progress ends with its SIGCONT within 4 s
        self.chaos_log.write("waiting for the jobs in flight")
        join(jobs, 2 * SUBMIT_TIMEOUT + 30)
        self.chaos_log.write("waiting for drained workers to exit")
        for t in list(self.drain_threads):
            join(t, DRAIN_EXIT_TIMEOUT + 5)
        self.check_processes()

    def shutdown(self):
        """Stops every process started, workers first; SIGKILL after STOP_GRACE seconds."""
        self.stop_chaos.set()
        self.stop_jobs.set()
        everything = self.procs.close()
        if not everything:
            return
        for p, _, _ in everything:
            signal_proc(p, signal.SIGCONT)  # a frozen process cannot act on SIGTERM
        others = [p for p, role, _ in everything if role != "master"]
        for p in others:
            signal_proc(p, signal.SIGTERM)
        wait_all(others, STOP_GRACE)
        masters = [p for p, role, _ in everything if role == "master"]
        for p in masters:
            signal_proc(p, signal.SIGTERM)
        wait_all(masters, STOP_GRACE)
        for p, _, _ in everything:
            signal_proc(p, signal.SIGKILL)
        wait_all([p for p, _, _ in everything], 5)
        in_service = {w["proc"].pid for w in self.workers.values()}
        for p, role, name in everything:
            if role == "master" or p.pid in in_service:
                self.final_codes[name] = p.returncode
        alive = {p.pid for p, _, _ in everything if p.poll() is None}
        alive.update(tagged_pids(self.procs.tag))
        self.left = len(alive)
        if alive:
            self.problems.append(f"processes left: pids {sorted(alive)}")
        for f in self.logfiles:
            try:
                f.close()
            except OSError:
                pass

    def report(self):
        o = self.o
        print(f"soak: duration {o.duration:g} s, workers {o.workers} x {o.threads} thread(s), "
              f"heartbeat {o.heartbeat}, seed {o.seed}")
        print(f"jobs run: {self.jobs_run}")
        print(f"workers killed: {self.killed}, stopped: {self.stopped}, drained: {self.drained} "
              f"(non-zero exits: {self.drain_bad})")
        print(f"shards re-run: {self.reruns}")
        print(f"results wrong: {self.wrong}")
        print(f"jobs lost: {self.lost}")
        print(f"processes left: {self.left}")
        print(f"logs: {self.logdir}")
        if self.master_died is not None:
            print(f"note: the master exited on its own with {self.master_died}")
        for line in self.unexpected:
            print(f"note: worker exited without being asked: {line}")
        odd = {n: rc for n, rc in self.final_codes.items() if rc != 0}
        if odd:
            print(f"note: exit codes at the final stop (SIGTERM) that were not 0: {odd}")
        for line in self.problems:
            print(f"problem: {line}")
        failed = (self.wrong or self.lost or self.drain_bad or self.left
                  or self.master_died is not None)
        return 1 if failed else 0


def join(thread, timeout):
    thread.join(timeout)
    return not thread.is_alive()


def on_signal(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main():
    ap = argparse.ArgumentParser(
        description="Soak test: run farm jobs with known results while killing, freezing and "
        "draining workers; print a summary and exit non-zero on any wrong or lost result.",
    )
    ap.add_argument("--duration", type=float, default=180, help="seconds of jobs and chaos "
                    "(default 180)")
    ap.add_argument("--workers", type=int, default=4, help="worker processes (default 4)")
    ap.add_argument("--threads", type=int, default=1, help="threads per worker (default 1)")
    ap.add_argument("--farm", default="./target/release/farm",
                    help="the farm binary (default ./target/release/farm)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the job and chaos choices "
                    "(default 1)")
    ap.add_argument("--heartbeat", default="500ms", help="heartbeat period passed to the master "
                    "(default 500ms)")
    o = ap.parse_args()
    if o.workers < 1 or o.threads < 1 or o.duration <= 0:
        ap.error("--workers, --threads and --duration must be positive")
    o.farm = os.path.abspath(o.farm)
    if not os.access(o.farm, os.X_OK):
        ap.error(f"no executable farm binary at {o.farm} (cargo build --release --bin farm)")

    # Ctrl-C works even when started from a shell that ignores SIGINT in background jobs.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    soak = Soak(o)
    interrupted = False
    crashed = False
    try:
        soak.run()
    except KeyboardInterrupt:
        interrupted = True
        print("soak: interrupted, stopping everything", file=sys.stderr)
    except Exception as e:  # noqa: BLE001 - report, then clean up below
        soak.problems.append(f"soak script error: {e!r}")
        crashed = True
    finally:
        # Ignore further Ctrl-C while cleaning up, so that no process is left behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        soak.shutdown()
        soak.chaos_log.close()
        soak.jobs_log.close()
    rc = soak.report()
    if crashed:
        return 2
    if interrupted:
        return rc or 130
    return rc


if __name__ == "__main__":
    sys.exit(main())
