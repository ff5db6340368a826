"""Fixtures: a real `farm master` (the binary named by FARM_BIN) and Python workers
(`python -m farm worker`), every process cleaned up, every wait bounded.

Environment:
- FARM_BIN: the `farm` binary (required: tests that need a master fail without it under
  CI=true and skip otherwise).
- FARM_OTHER_PYTHON: an interpreter of another minor version with this package installed, for
  the environment-matching test.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from typing import Callable, List, Optional

import pytest

import farm

#: Every wait in these tests is bounded by this (a loaded 2-core machine, debug builds).
WAIT = 120.0


def missing(what: str):
    """A missing piece: a failure under CI=true, a skip elsewhere."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is required in CI")
    pytest.skip(f"{what} not found")


def wait_for(cond: Callable[[], object], what: str, timeout: float = WAIT):
    """Polls `cond` until it returns something truthy; fails naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


class Cluster:
    """A `farm master` on a free port with a token, and the workers started against it."""

    def __init__(self, farm_bin: str):
        self.token = secrets.token_hex(8)
        self.procs: List[subprocess.Popen] = []
        master = subprocess.Popen(
            [farm_bin, "master", "--listen", "127.0.0.1:0", "--http", "off", "--token", self.token],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        self.procs.append(master)
        lines: list = []
        got = threading.Event()

        def read():
            for line in master.stdout:
                if not got.is_set():
                    lines.append(line)
                    got.set()

        threading.Thread(target=read, daemon=True).start()
        if not got.wait(WAIT):
            self.close()
            pytest.fail("the master did not print its address")
        addr = lines[0].strip().split(" ")[-1]
        self.url = addr if addr.startswith("http") else f"http://{addr}"
        self.client = farm.Client(self.url, token=self.token)

    def env(self) -> dict:
        env = dict(os.environ)
        env["FARM_TOKEN"] = self.token
        return env

    def worker(
        self,
        processes: int = 1,
        allow_python: bool = True,
        python: Optional[str] = None,
        extra: Optional[list] = None,
        wait: bool = True,
    ) -> subprocess.Popen:
        """Starts `python -m farm worker` (a supervisor of `processes`) and, with `wait`, waits
        until its processes registered."""
        before = len(self.client.workers())
        cmd = [python or sys.executable, "-m", "farm", "worker", "--master", self.url]
        cmd += ["--processes", str(processes)]
        if allow_python:
            cmd.append("--allow-python")
        cmd += extra or []
        proc = subprocess.Popen(
            cmd, env=self.env(), stdin=subprocess.DEVNULL, start_new_session=True, cwd="/"
        )
        self.procs.append(proc)
        if wait:
            wait_for(lambda: len(self.client.workers()) >= before + processes, "the workers to register")
        return proc

    def executor(self, **kw) -> farm.Executor:
        return farm.Executor(self.url, token=self.token, **kw)

    def close(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except OSError:
                    pass
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                pass


@pytest.fixture(scope="session")
def farm_bin() -> str:
    path = os.environ.get("FARM_BIN") or shutil.which("farm")
    if not path or not os.path.exists(path):
        missing("the farm binary (FARM_BIN)")
    return path


@pytest.fixture
def cluster(farm_bin):
    """A fresh master with no workers."""
    c = Cluster(farm_bin)
    yield c
    c.close()


@pytest.fixture(scope="module")
def shared(farm_bin):
    """A master with one supervisor of two Python worker processes, shared by a module's
    tests that do not disturb it."""
    c = Cluster(farm_bin)
    c.worker(processes=2)
    yield c
    c.close()


@pytest.fixture(scope="session")
def other_python() -> str:
    path = os.environ.get("FARM_OTHER_PYTHON")
    if not path or not os.path.exists(path):
        missing("another Python interpreter with farm installed (FARM_OTHER_PYTHON)")
    return path
