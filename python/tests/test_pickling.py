"""The encodings and the worker-side runner, without a master."""

import base64
import hashlib
import subprocess
import sys
import textwrap

import cloudpickle
import pytest

from farm import _pickling
from farm._pickling import (
    PickleTooLarge,
    RemoteTraceback,
    decode_line,
    encode_chunk,
    function_module,
    load_module,
)
from farm._runner import Runner


def remote_error(type_name, message, tb):
    return ("remote", type_name, message, tb)


def run(fn, items, initializer=None, initargs=()):
    sha, data = function_module(fn, initializer, initargs)
    lines = Runner()(sha, data, encode_chunk(items))
    assert len(lines) == 1, "a chunk's output is one line"
    return decode_line(lines[0], remote_error)


def test_the_module_is_named_by_its_sha256_and_loads_back():
    sha, data = function_module(pow)
    assert sha == hashlib.sha256(data).hexdigest()
    fn, init = load_module(data)
    assert fn is pow and init is None
    fn, init = load_module(function_module(pow, print, (1, 2))[1])
    assert fn is pow and init == (print, (1, 2))


def test_a_lambda_and_a_closure_run_with_args_and_kwargs():
    k = 7
    assert run(lambda x, y=1: x * k + y, [((2,), {}), ((3,), {"y": 10})]) == [(True, 15), (True, 31)]


def test_an_exception_comes_back_as_itself_with_the_remote_traceback():
    def boom(x):
        raise KeyError(f"no {x}")

    [(ok, exc)] = run(boom, [((5,), {})])
    assert not ok and isinstance(exc, KeyError) and exc.args == ("no 5",)
    assert isinstance(exc.__cause__, RemoteTraceback)
    assert "in boom" in str(exc.__cause__) and "KeyError" in str(exc.__cause__)


class Unpicklable(Exception):
    def __reduce__(self):
        raise TypeError("no pickling for me")


def test_an_unpicklable_exception_comes_back_as_its_type_message_and_traceback():
    def boom():
        raise Unpicklable("bad luck")

    [(ok, err)] = run(boom, [((), {})])
    assert not ok
    kind, type_name, message, tb = err
    assert kind == "remote" and type_name.endswith("Unpicklable") and message == "bad luck"
    assert "in boom" in tb


def test_a_result_that_cannot_be_pickled_fails_that_item_with_the_reason():
    import threading

    out = run(lambda i: threading.Lock() if i == 1 else i, [((0,), {}), ((1,), {}), ((2,), {})])
    assert out[0] == (True, 0) and out[2] == (True, 2)
    ok, exc = out[1]
    assert not ok and isinstance(exc, _pickling.ResultNotPicklable)
    assert "cannot be pickled" in str(exc) and "lock" in str(exc).lower()


STATE = {"ready": False}


def set_ready(value):
    STATE["ready"] = value


def read_ready(x):
    return (STATE["ready"], x)


def test_the_function_is_unpickled_once_per_hash_and_its_initializer_runs_then():
    import os

    r, w = os.pipe()
    # os.write pickles by reference, so its side effect is observable here.
    sha, data = function_module(lambda x: x + 1, os.write, (w, b"i"))
    runner = Runner()
    line = encode_chunk([((1,), {})])
    for _ in range(3):
        assert [o for l in runner(sha, data, line) for o in decode_line(l, remote_error)] == [(True, 2)]
    assert runner.unpickled == 1
    os.close(w)
    assert os.read(r, 100) == b"i"
    os.close(r)


def test_what_the_initializer_sets_is_what_the_function_sees():
    # Both come by value (this test module is not installed): they share their globals.
    sha, data = function_module(read_ready, set_ready, ("yes",))
    out = Runner()(sha, data, encode_chunk([((1,), {})]))
    assert [o for l in out for o in decode_line(l, remote_error)] == [(True, ("yes", 1))]
    assert STATE["ready"] is False, "the initializer ran on a copy, not here"


def test_a_failing_initializer_fails_the_shard_not_the_items():
    def bad():
        raise OSError("no disk")

    sha, data = function_module(abs, bad)
    with pytest.raises(RuntimeError, match="the initializer failed: OSError: no disk"):
        Runner()(sha, data, encode_chunk([((1,), {})]))


def test_a_function_over_the_limit_is_refused_naming_its_largest_globals():
    big = list(range(1_000_000))
    small = "x" * 10

    def f(i):
        return big[i] + len(small)

    with pytest.raises(PickleTooLarge) as err:
        function_module(f, limit=1024 * 1024)
    msg = str(err.value)
    assert "f pickles to" in msg and "over the limit of 1.0 MiB" in msg
    assert "big (" in msg and msg.index("big (") < msg.index("small (")


def test_the_environment_names_the_interpreter_and_cloudpickle():
    env = _pickling.environment()
    v = sys.version_info
    assert env["python"].startswith(f"CPython {v[0]}.{v[1]}")
    assert env["cloudpickle"] == ".".join(cloudpickle.__version__.split(".")[:2])


def test_a_local_module_that_is_not_installed_is_pickled_by_value(tmp_path):
    (tmp_path / "mylocalmod.py").write_text("def triple(x):\n    return 3 * x\n")
    script = textwrap.dedent(
        """
        import sys, base64
        sys.path.insert(0, sys.argv[1])
        import mylocalmod
        from farm._pickling import function_module
        sha, data = function_module(mylocalmod.triple)
        sys.stdout.write(base64.b64encode(data).decode())
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], check=True, capture_output=True, text=True
    ).stdout
    data = base64.b64decode(out)
    # Here `mylocalmod` is not importable: the function came by value.
    assert "mylocalmod" not in sys.modules
    fn, _ = load_module(data)
    assert fn(5) == 15


def test_an_installed_module_is_pickled_by_reference():
    import json

    _, data = function_module(json.dumps)
    assert len(data) < 200, len(data)


def test_values_take_the_c_pickler_unless_it_fails_or_would_name_main():
    import pickle

    assert _pickling.dumps([1, "a", (2.5, None)]) == pickle.dumps([1, "a", (2.5, None)], protocol=pickle.HIGHEST_PROTOCOL)
    # The C pickler refuses a lambda: cloudpickle carries it.
    assert pickle.loads(_pickling.dumps(lambda x: x + 1))(2) == 3
    # The C pickler would name a class of __main__, which the other side lacks: it goes by value.
    main = sys.modules["__main__"]
    cls = type("FarmTestMainThing", (), {"__module__": "__main__", "n": 7})
    setattr(main, "FarmTestMainThing", cls)
    try:
        pickle.dumps(cls())  # the C pickler takes it, by reference
        data = _pickling.dumps(cls())
    finally:
        delattr(main, "FarmTestMainThing")
    assert pickle.loads(data).n == 7


def test_an_outcome_that_does_not_unpickle_fails_only_its_item():
    import pickle

    good = ("o", pickle.dumps(5))
    line = "c" + base64.b64encode(pickle.dumps([good, ("o", b"not a pickle"), good])).decode()
    out = _pickling.decode_line(line, remote_error)
    assert out[0] == (True, 5) and out[2] == (True, 5)
    assert out[1][0] is False and out[1][1][0] == "remote" and "could not be unpickled" in out[1][1][2]
