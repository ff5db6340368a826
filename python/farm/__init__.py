"""farm for Python: a `concurrent.futures` Executor over a farm cluster, warm Python workers,
and a typed client.

    import farm
    with farm.Executor("http://127.0.0.1:7070") as ex:   # or farm.Executor() for a local farm
        print(sum(ex.map(pow, range(1000), range(1000), chunksize=100)))

- `Client`: submit jobs of any kernel, wait, stream results, cancel, read logs; list jobs,
  workers and kinds.
- `Executor`: a `concurrent.futures.Executor` whose calls run on Python workers
  (``python -m farm worker --master URL --allow-python``).
- `FarmError` and one subclass per gRPC code (`NotFound`, `InvalidArgument`, ...), carrying
  the master's message; `RemoteError` for a remote exception that could not come back as
  itself; `JobFailed`/`ShardFailed` for a job that failed as a whole.

See docs/python.md in the farm repository.
"""

from ._native import (  # noqa: F401
    Aborted,
    AlreadyExists,
    Cancelled,
    DataLoss,
    DeadlineExceeded,
    FailedPrecondition,
    FarmError,
    Internal,
    InvalidArgument,
    NotFound,
    OutOfRange,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    Unimplemented,
    Unknown,
)
from ._pickling import PickleTooLarge, RemoteTraceback, ResultNotPicklable, environment  # noqa: F401
from .client import Client, Job, JobFailed  # noqa: F401
from .executor import Executor, RemoteError, ShardFailed  # noqa: F401

__all__ = [
    "Client",
    "Job",
    "Executor",
    "environment",
    "FarmError",
    "JobFailed",
    "ShardFailed",
    "RemoteError",
    "RemoteTraceback",
    "ResultNotPicklable",
    "PickleTooLarge",
    "Cancelled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
]
