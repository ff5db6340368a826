"""The worker side of the `python` kernel: what a Python worker process runs for each shard.

`Runner` is the callable handed to `_native.run_worker`: it is called on a pool thread with
the GIL held, as ``runner(function_sha, function_bytes, input_line) -> list[str]``. It keeps
the interpreter warm: each function module is unpickled once per hash (a small LRU) and its
initializer runs then, once per process for that module. Per-item exceptions are caught and
encoded (see `_pickling`); an exception raised out of the runner is an infrastructure failure
and fails the shard with its message, which the master retries under the job's retries.
"""

from __future__ import annotations

import collections
import threading
from typing import Callable, Dict, List

from . import _pickling

#: Function modules kept unpickled per process.
CACHE_FUNCTIONS = 64


class Runner:
    def __init__(self, cache: int = CACHE_FUNCTIONS):
        self._cache: "collections.OrderedDict[str, Callable]" = collections.OrderedDict()
        self._size = cache
        self._lock = threading.Lock()
        # One lock per module being loaded, so two threads do not both run its initializer.
        self._loading: Dict[str, threading.Lock] = {}
        self.unpickled = 0

    def _cached(self, sha: str):
        with self._lock:
            fn = self._cache.get(sha)
            if fn is not None:
                self._cache.move_to_end(sha)
            return fn

    def function(self, sha: str, data: bytes) -> Callable:
        fn = self._cached(sha)
        if fn is not None:
            return fn
        with self._lock:
            loading = self._loading.setdefault(sha, threading.Lock())
        with loading:
            fn = self._cached(sha)
            if fn is not None:
                return fn
            fn, init = _pickling.load_module(data)
            if init is not None:
                initializer, initargs = init
                try:
                    initializer(*initargs)
                except Exception as exc:
                    raise RuntimeError(f"the initializer failed: {type(exc).__name__}: {exc}") from exc
            with self._lock:
                self.unpickled += 1
                self._cache[sha] = fn
                while len(self._cache) > self._size:
                    self._cache.popitem(last=False)
                self._loading.pop(sha, None)
        return fn

    def __call__(self, sha: str, data: bytes, line: str) -> List[str]:
        fn = self.function(sha, data)
        return _pickling.run_chunk(fn, _pickling.decode_chunk(line))
