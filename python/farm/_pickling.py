"""What travels between a client and its Python workers, and how it is encoded.

Everything here is pure Python over `cloudpickle`; the native module only moves the strings.

- The function module (stored on the master in the PICKLE format, named by its sha256): the
  standard pickle of a dict ``{"version": 1, "payload": bytes}``, where ``payload`` is the
  cloudpickle of ``(function, (initializer, initargs) or None)``, pickled together so that
  by-value functions share their globals with their initializer. A worker unpickles it once
  per hash and process, and runs the initializer then.
- One shard input (one line, one chunk): ``base64(pickle(list of (args, kwargs)))``.
- One shard output line: ``"c" + base64(pickle(list of (tag, bytes)))``, one outcome per
  item, in order (`run_chunk`): ``("o", pickle(value))`` for a value (the C pickler's,
  cloudpickle's only when that fails: see `dumps`), ``("e", pickle((pickled exception or
  None, type name, message, traceback text)))`` for an error (the exception pickled on its
  own, so that one the client cannot unpickle still arrives as its type name, message and
  traceback). Each outcome is pickled on its own, so one that does not unpickle fails only
  its item. `decode_line` also reads the older one-line-per-item form, ``"o"`` or ``"e"`` +
  base64 of the same bytes.
- The environment: labels of a Python worker and requirements of a Python job,
  ``{"python": "CPython 3.12", "cloudpickle": "3.1"}``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import pickle
import platform
import sys
import sysconfig
import traceback
import types
from typing import Any, Callable, Iterable, List, Optional, Sequence, Tuple

import cloudpickle

#: The default limit of a pickled function with its captured globals.
MAX_PICKLE_BYTES = 8 * 1024 * 1024

#: The version of the function module's layout.
MODULE_VERSION = 1

PROTOCOL = pickle.HIGHEST_PROTOCOL


class PickleTooLarge(ValueError):
    """A function pickles to more than the limit; the message names its largest globals."""


def environment() -> dict:
    """This interpreter's fingerprint: the labels a worker registers, the requires of a job."""
    version = f"{platform.python_implementation()} {sys.version_info[0]}.{sys.version_info[1]}"
    if free_threaded():
        version += " free-threaded"
    major_minor = ".".join(cloudpickle.__version__.split(".")[:2])
    return {"python": version, "cloudpickle": major_minor}


def free_threaded() -> bool:
    """Whether this is a free-threaded build running without the GIL."""
    is_gil_enabled = getattr(sys, "_is_gil_enabled", None)
    return is_gil_enabled is not None and not is_gil_enabled()


# ---------------------------------------------------------------------------------------------
# By value or by reference


def _installed_roots() -> List[str]:
    roots = set()
    for name in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(name)
        if path:
            roots.add(os.path.realpath(path))
    for path in sys.path:
        if "site-packages" in path or "dist-packages" in path:
            roots.add(os.path.realpath(path))
    roots.add(os.path.realpath(sys.prefix))
    roots.add(os.path.realpath(sys.base_prefix))
    return sorted(roots)


def _is_local(module: types.ModuleType) -> bool:
    """Whether `module` is the user's own code: a file not under the interpreter's install."""
    if module.__name__ in sys.builtin_module_names or module.__name__ == "__main__":
        return False
    path = getattr(module, "__file__", None)
    if not path:
        return False
    path = os.path.realpath(path)
    for root in _installed_roots():
        if path == root or path.startswith(root + os.sep):
            return False
    return True


_by_value: set = set()


def register_local_modules(fn: Any) -> None:
    """Marks the local, non-installed modules `fn` comes from (and its package) to be pickled
    by value, so workers that do not have them can run it. `__main__` is always by value."""
    name = getattr(fn, "__module__", None)
    if not name or name == "__main__" or name in _by_value:
        return
    module = sys.modules.get(name)
    if module is None:
        return
    top = sys.modules.get(name.split(".")[0], module)
    target = top if _is_local(top) else module
    if _is_local(target) and target.__name__ not in _by_value:
        cloudpickle.register_pickle_by_value(target)
        _by_value.add(target.__name__)


# ---------------------------------------------------------------------------------------------
# The function module


def _code_names(code: types.CodeType) -> set:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


def captured(fn: Any) -> List[Tuple[str, Any]]:
    """The globals, closure cells and defaults `fn` takes along, by name."""
    out = []
    code = getattr(fn, "__code__", None)
    if code is None:
        # A callable object (functools.partial, an instance): its state goes along.
        state = getattr(fn, "__dict__", None) or {}
        for key in ("func", "args", "keywords"):
            if hasattr(fn, key):
                out.append((key, getattr(fn, key)))
        out.extend(state.items())
        return out
    fn_globals = getattr(fn, "__globals__", {})
    for name in sorted(_code_names(code)):
        if name in fn_globals:
            value = fn_globals[name]
            if not isinstance(value, types.ModuleType):
                out.append((name, value))
    for name, cell in zip(code.co_freevars, getattr(fn, "__closure__", None) or ()):
        try:
            out.append((name, cell.cell_contents))
        except ValueError:
            pass
    for i, value in enumerate(getattr(fn, "__defaults__", None) or ()):
        out.append((f"default #{i + 1}", value))
    for name, value in (getattr(fn, "__kwdefaults__", None) or {}).items():
        out.append((name, value))
    return out


def _size(value: Any) -> int:
    try:
        return len(cloudpickle.dumps(value, protocol=PROTOCOL))
    except Exception:
        return -1


def human(n: int) -> str:
    """`n` bytes for a person."""
    if n < 0:
        return "unpicklable"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def too_large_message(what: str, fn: Any, size: int, limit: int) -> str:
    """Why `fn` pickled to `size` bytes: its largest captured values, largest first."""
    sizes = sorted(((_size(v), name) for name, v in captured(fn)), reverse=True)
    top = ", ".join(f"{name} ({human(n)})" for n, name in sizes[:5] if n > 0)
    name = getattr(fn, "__qualname__", None) or type(fn).__name__
    msg = f"{what} {name} pickles to {human(size)}, over the limit of {human(limit)}"
    if top:
        msg += f"; its largest captured values: {top}"
    return msg + " (pass them as arguments, or raise max_pickle_bytes)"


def pickle_function(fn: Callable, limit: int = MAX_PICKLE_BYTES, what: str = "function") -> bytes:
    """cloudpickle of `fn`, by value when it is from `__main__` or a local module; refused with
    `PickleTooLarge` over `limit` bytes."""
    if not callable(fn):
        raise TypeError(f"{what} must be callable, not {type(fn).__name__}")
    register_local_modules(fn)
    data = cloudpickle.dumps(fn, protocol=PROTOCOL)
    if len(data) > limit:
        raise PickleTooLarge(too_large_message(what, fn, len(data), limit))
    return data


def function_module(
    fn: Callable,
    initializer: Optional[Callable] = None,
    initargs: Sequence = (),
    limit: int = MAX_PICKLE_BYTES,
) -> Tuple[str, bytes]:
    """The module a python job names: (its sha256, its bytes).

    The function and the initializer are pickled in ONE cloudpickle call, so that functions
    pickled by value share their globals: what the initializer sets is what the function
    sees. A worker runs the initializer once per process for each module it loads."""
    pickle_function(fn, limit)
    init = None
    if initializer is not None:
        pickle_function(initializer, limit, what="initializer")
        init = (initializer, tuple(initargs))
    payload = cloudpickle.dumps((fn, init), protocol=PROTOCOL)
    module = {"version": MODULE_VERSION, "payload": payload}
    data = pickle.dumps(module, protocol=4)
    if len(data) > limit:
        raise PickleTooLarge(
            f"the function with its initializer and initargs pickles to {human(len(data))}, "
            f"over the limit of {human(limit)} (raise max_pickle_bytes)"
        )
    return hashlib.sha256(data).hexdigest(), data


def load_module(data: bytes) -> Tuple[Callable, Optional[Tuple[Callable, tuple]]]:
    """The function of a module and its (initializer, initargs), or None."""
    module = pickle.loads(data)
    if not isinstance(module, dict) or module.get("version") != MODULE_VERSION:
        raise ValueError("not a farm python function module (or from another farm version)")
    fn, init = pickle.loads(module["payload"])
    return fn, init


# ---------------------------------------------------------------------------------------------
# Items


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def encode_chunk(items: Iterable[Tuple[tuple, dict]]) -> str:
    """One shard's input line: its items' arguments."""
    return _b64(dumps([(tuple(a), dict(k)) for a, k in items]))


def decode_chunk(line: str) -> List[Tuple[tuple, dict]]:
    return pickle.loads(base64.b64decode(line))


def dumps(value: Any) -> bytes:
    """The pickle of `value`: the C pickler's, which is much cheaper per call, and
    cloudpickle's only when that one fails (a lambda, a class or function of a module pickled
    by value, anything else it would have to carry by value)."""
    try:
        data = pickle.dumps(value, protocol=PROTOCOL)
    except Exception:
        return cloudpickle.dumps(value, protocol=PROTOCOL)
    # The C pickler names every class and function by module; one of `__main__` or of a module
    # marked by value would not be there on the other side, so those go by value. A global's
    # module name is always spelled out in the pickle, so a substring test cannot miss one.
    if b"__main__" in data or any(name.encode() in data for name in tuple(_by_value)):
        return cloudpickle.dumps(value, protocol=PROTOCOL)
    return data


def _error_payload(exc: BaseException, tb_text: Optional[str] = None) -> bytes:
    """The body of an item's error: the exception itself when it pickles and unpickles, else
    None, with its type name, message and traceback."""
    if tb_text is None:
        tb_text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    type_name = f"{type(exc).__module__}.{type(exc).__qualname__}"
    try:
        message = str(exc)
    except Exception:
        message = repr(exc)
    try:
        exc_bytes: Optional[bytes] = cloudpickle.dumps(exc, protocol=PROTOCOL)
        pickle.loads(exc_bytes)
    except Exception:
        exc_bytes = None
    return pickle.dumps((exc_bytes, type_name, message, tb_text), protocol=PROTOCOL)


def encode_value(value: Any) -> str:
    """An item's output line for a value; raises when it cannot be pickled."""
    return "o" + _b64(dumps(value))


def encode_error(exc: BaseException, tb_text: Optional[str] = None) -> str:
    """An item's output line for an exception (see `_error_payload`)."""
    return "e" + _b64(_error_payload(exc, tb_text))


def _outcome(fn: Callable, args: tuple, kwargs: dict) -> Tuple[str, bytes]:
    """Runs one item: ("o", pickled value) or ("e", error payload); an Exception becomes an
    error, and so does a result that cannot be pickled."""
    try:
        value = fn(*args, **kwargs)
    except Exception as exc:
        return "e", _error_payload(exc)
    try:
        return "o", dumps(value)
    except Exception as exc:
        reason = f"result of type {type(value).__qualname__} cannot be pickled: {exc}"
        return "e", _error_payload(ResultNotPicklable(reason), tb_text=reason + "\n")


def run_item(fn: Callable, args: tuple, kwargs: dict) -> str:
    """Runs one item and encodes its outcome as its own output line."""
    tag, data = _outcome(fn, args, kwargs)
    return tag + _b64(data)


def run_chunk(fn: Callable, items: Iterable[Tuple[tuple, dict]]) -> List[str]:
    """Runs a chunk's items; its output is ONE line, ``"c" + base64(pickle(list of (tag,
    bytes)))``, each item's outcome pickled on its own (so that one the client cannot unpickle
    fails only its item) but the chunk base64-encoded, carried and decoded once."""
    outcomes = [_outcome(fn, args, kwargs) for args, kwargs in items]
    return ["c" + _b64(pickle.dumps(outcomes, protocol=PROTOCOL))]


class ResultNotPicklable(TypeError):
    """An item's result could not be pickled on the worker."""


class RemoteTraceback(Exception):
    """The traceback of an exception raised on a worker, attached as its ``__cause__``."""

    def __init__(self, tb: str):
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return "\n\n" + self.tb.rstrip("\n")


def _decode_one(tag: str, data: bytes, remote_error: Callable[[str, str, str], BaseException]) -> Tuple[bool, Any]:
    if tag == "o":
        try:
            return True, pickle.loads(data)
        except Exception as exc:
            return False, remote_error(
                f"{type(exc).__module__}.{type(exc).__qualname__}",
                f"the result could not be unpickled here: {exc}",
                "",
            )
    if tag != "e":
        return False, remote_error("farm.BadOutput", f"an output tagged {tag!r}", "")
    try:
        exc_bytes, type_name, message, tb_text = pickle.loads(data)
    except Exception as err:
        return False, remote_error("farm.BadOutput", f"an error line that does not decode: {err}", "")
    exc = None
    if exc_bytes is not None:
        try:
            exc = pickle.loads(exc_bytes)
        except Exception:
            exc = None
    if not isinstance(exc, BaseException):
        return False, remote_error(type_name, message, tb_text)
    if tb_text:
        exc.__cause__ = RemoteTraceback(tb_text)
    return False, exc


def decode_line(line: str, remote_error: Callable[[str, str, str], BaseException]) -> List[Tuple[bool, Any]]:
    """The outcomes an output line carries, in order, each (True, value) or (False,
    exception): a chunk's (tag "c") or one item's (tags "o" and "e"). `remote_error` builds the
    exception for one that could not be pickled or unpickled."""
    if not line:
        return [(False, remote_error("farm.EmptyOutput", "an empty output line", ""))]
    tag = line[0]
    try:
        data = base64.b64decode(line[1:])
    except Exception as err:
        return [(False, remote_error("farm.BadOutput", f"an output line that is not base64: {err}", ""))]
    if tag != "c":
        return [_decode_one(tag, data, remote_error)]
    try:
        outcomes = pickle.loads(data)
        return [_decode_one(t, d, remote_error) for t, d in outcomes]
    except Exception as err:
        return [(False, remote_error("farm.BadOutput", f"a chunk line that does not decode: {err}", ""))]


def decode_output(line: str, remote_error: Callable[[str, str, str], BaseException]) -> Tuple[bool, Any]:
    """(True, value) or (False, exception) from the output line of ONE item."""
    outcomes = decode_line(line, remote_error)
    if len(outcomes) != 1:
        return False, remote_error("farm.BadOutput", f"{len(outcomes)} outcomes in a line for one item", "")
    return outcomes[0]
