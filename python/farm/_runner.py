"""The worker side of the `python` kernel: what a Python worker process runs for each shard.

`Runner` is the callable handed to `_native.run_worker`: it is called on a pool thread with
the GIL held, as ``runner(function_sha, function_bytes, input_line) -> list[str]``. It keeps
the interpreter warm: each function is unpickled once per hash (a small LRU), and each
initializer runs once per process. Per-item exceptions are caught and encoded (see
`_pickling`); an exception raised out of the runner is an infrastructure failure and fails
the shard with its message, which the master retries under the job's retries.
"""

from __future__ import annotations

import collections
import hashlib
import threading
from typing import Callable, List

from . import _pickling

#: Unpickled functions kept per process.
CACHE_FUNCTIONS = 64


class Runner:
    def __init__(self, cache: int = CACHE_FUNCTIONS):
        self._cache: "collections.OrderedDict[str, Callable]" = collections.OrderedDict()
        self._size = cache
        self._lock = threading.Lock()
        # Initializers that ran in this process, by the sha256 of their pickle; an event per
        # entry so that concurrent threads wait for the one running it.
        self._inits: dict = {}
        self.unpickled = 0

    def function(self, sha: str, data: bytes) -> Callable:
        with self._lock:
            fn = self._cache.get(sha)
            if fn is not None:
                self._cache.move_to_end(sha)
                return fn
        fn, init = _pickling.load_module(data)
        if init is not None:
            self._initialize(init)
        with self._lock:
            self.unpickled += 1
            self._cache[sha] = fn
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return fn

    def _initialize(self, init: bytes) -> None:
        key = hashlib.sha256(init).hexdigest()
        with self._lock:
            entry = self._inits.get(key)
            mine = entry is None
            if mine:
                entry = self._inits[key] = [threading.Event(), None]
        if not mine:
            entry[0].wait()
            if entry[1] is not None:
                raise RuntimeError(entry[1])
            return
        try:
            import pickle

            initializer, initargs = pickle.loads(init)
            initializer(*initargs)
        except Exception as exc:
            entry[1] = f"the initializer failed: {type(exc).__name__}: {exc}"
            entry[0].set()
            raise RuntimeError(entry[1]) from exc
        entry[0].set()

    def __call__(self, sha: str, data: bytes, line: str) -> List[str]:
        fn = self.function(sha, data)
        return [_pickling.run_item(fn, args, kwargs) for args, kwargs in _pickling.decode_chunk(line)]
