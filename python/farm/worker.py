"""`python -m farm worker`: a Python worker for the `python` kernel.

The supervisor starts P child processes (``python -m farm worker --child ...``); each runs the
project's Rust worker session in-process (`_native.run_worker`) with a `Runner`, so the
process is the worker. A child that dies (a segfault, ``os._exit``, or the kernel ending it
because a cancelled or timed-out shard would not stop) is restarted with backoff, as
`farm master --workers` restarts its workers. SIGTERM or Ctrl-C stops the children and exits.

On a GIL build parallelism comes from processes: the default is one process per CPU of one
thread each. On a free-threaded build (``sys._is_gil_enabled()`` false) threads run in
parallel, so the default is one process of one thread per CPU. That path is untested here.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from typing import List, Optional

from . import _pickling

#: Restart backoff: first delay, cap, and how long a child must live to reset it.
BACKOFF_START = 0.2
BACKOFF_MAX = 10.0
HEALTHY_AFTER = 10.0


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_layout() -> tuple:
    """(processes, threads) when neither is given."""
    if _pickling.free_threaded():
        return 1, cpu_count()
    return cpu_count(), 1


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m farm worker",
        description="Run Python worker processes for farm's `python` kernel.",
    )
    p.add_argument("--master", required=True, help="the master's address, e.g. http://127.0.0.1:7070")
    p.add_argument(
        "--processes",
        type=int,
        default=None,
        help="worker processes to run (default: one per CPU on a GIL build, 1 on a free-threaded one)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads per process (default: 1 on a GIL build, one per CPU on a free-threaded one)",
    )
    p.add_argument(
        "--allow-python",
        action="store_true",
        help="offer the python kernel: it runs pickled code sent by any client of the master",
    )
    p.add_argument("--token", default=None, help="the master's token (or FARM_TOKEN)")
    p.add_argument("--token-file", default=None, help="read the master's token from this file")
    p.add_argument("--tls-ca", default=None, help="CA certificate (PEM) to verify the master's TLS")
    p.add_argument("--name", default="", help="the worker's name (processes get -1, -2, ... appended)")
    p.add_argument(
        "--exit-on-disconnect",
        action="store_true",
        help="stop when the master goes away instead of reconnecting",
    )
    p.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--child-restarts", type=int, default=0, help=argparse.SUPPRESS)
    return p


def _token(args) -> Optional[str]:
    if args.token_file:
        with open(args.token_file, encoding="utf-8") as f:
            return f.read().strip()
    return args.token or os.environ.get("FARM_TOKEN") or None


def _die_with_parent() -> None:
    """On Linux, asks for SIGTERM when the supervisor dies, even by kill -9."""
    parent = int(os.environ.get("FARM_SUPERVISOR_PID") or os.getppid())
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:
        sys.exit(0)


def run_child(args) -> int:
    """One worker process: the Rust session in this process, until drained or stopped."""
    from . import _native

    _die_with_parent()
    from ._runner import Runner

    threads = args.threads or default_layout()[1]
    try:
        _native.run_worker(
            args.master,
            runner=Runner(),
            threads=threads,
            token=_token(args),
            tls_ca=args.tls_ca,
            name=args.name,
            labels=_pickling.environment(),
            allow_python=args.allow_python,
            exit_on_disconnect=args.exit_on_disconnect,
            restarts=args.child_restarts,
        )
    except KeyboardInterrupt:
        return 0
    return 0


class Supervisor:
    """Keeps `processes` children running until stopped."""

    def __init__(self, args, processes: int):
        self.args = args
        self.processes = processes
        self.children: List[Optional[subprocess.Popen]] = [None] * processes
        self.stopping = threading.Event()

    def child_command(self, index: int, restarts: int = 0) -> List[str]:
        a = self.args
        cmd = [sys.executable, "-m", "farm", "worker", "--master", a.master, "--child", str(index)]
        cmd += ["--child-restarts", str(restarts)]
        if a.threads:
            cmd += ["--threads", str(a.threads)]
        if a.allow_python:
            cmd.append("--allow-python")
        if a.tls_ca:
            cmd += ["--tls-ca", a.tls_ca]
        if a.exit_on_disconnect:
            cmd.append("--exit-on-disconnect")
        name = a.name
        if name and self.processes > 1:
            name = f"{name}-{index + 1}"
        if name:
            cmd += ["--name", name]
        return cmd

    def start(self, index: int, restarts: int = 0) -> subprocess.Popen:
        env = dict(os.environ)
        env["FARM_SUPERVISOR_PID"] = str(os.getpid())
        token = _token(self.args)
        if token:
            # Through the environment, not argv, so `ps` does not show it.
            env["FARM_TOKEN"] = token
        child = subprocess.Popen(self.child_command(index, restarts), env=env, stdin=subprocess.DEVNULL)
        self.children[index] = child
        return child

    def watch(self, index: int) -> None:
        delay = BACKOFF_START
        restarts = 0
        while not self.stopping.is_set():
            started = time.monotonic()
            child = self.start(index, restarts)
            code = child.wait()
            if self.stopping.is_set():
                return
            if self.args.exit_on_disconnect and code == 0:
                # The master went away or drained the worker: nothing to restart for.
                return
            if time.monotonic() - started > HEALTHY_AFTER:
                delay = BACKOFF_START
            print(
                f"farm worker: process {index + 1} exited with {code}; restarting in {delay:.1f} s",
                file=sys.stderr,
                flush=True,
            )
            if self.stopping.wait(delay):
                return
            delay = min(delay * 2, BACKOFF_MAX)
            restarts += 1

    def stop(self) -> None:
        self.stopping.set()
        for child in self.children:
            if child is not None and child.poll() is None:
                try:
                    child.send_signal(signal.SIGTERM)
                except OSError:
                    pass
        deadline = time.monotonic() + 5
        for child in self.children:
            if child is None:
                continue
            try:
                child.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()

    def run(self) -> int:
        threads = [
            threading.Thread(target=self.watch, args=(i,), daemon=True) for i in range(self.processes)
        ]
        for t in threads:
            t.start()

        def on_signal(signum, frame):
            self.stopping.set()

        signal.signal(signal.SIGTERM, on_signal)
        try:
            while not self.stopping.is_set() and any(t.is_alive() for t in threads):
                self.stopping.wait(0.2)
        except KeyboardInterrupt:
            pass
        self.stop()
        return 0


def main(argv: Optional[List[str]] = None) -> int:
    args = parser().parse_args(argv)
    if args.child is not None:
        return run_child(args)
    processes, threads = default_layout()
    if args.processes is not None:
        processes = args.processes
    if processes < 1:
        print("farm worker: --processes must be at least 1", file=sys.stderr)
        return 2
    if args.threads is not None and args.threads < 1:
        print("farm worker: --threads must be at least 1", file=sys.stderr)
        return 2
    if args.threads is None and threads != 1:
        args.threads = threads
    return Supervisor(args, processes).run()
