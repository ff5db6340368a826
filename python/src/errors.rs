//! `FarmError` and one subclass per gRPC code, each with a class attribute `code` (its name,
//! e.g. `"NOT_FOUND"`); `str(e)` is the master's message.

use farm_client::ClientError;
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use tonic::Code;

create_exception!(
    farm,
    FarmError,
    PyException,
    "An error from the farm master; `code` names its gRPC code."
);

macro_rules! codes {
    ($($name:ident => $code:ident, $wire:literal;)*) => {
        $(create_exception!(farm, $name, FarmError);)*

        /// The exception for a gRPC code, with `message`.
        pub fn by_code(code: Code, message: String) -> PyErr {
            match code {
                $(Code::$code => $name::new_err(message),)*
                Code::Ok => FarmError::new_err(message),
            }
        }

        /// Adds the exceptions to the module, each with its `code`.
        pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
            let py = m.py();
            let base = py.get_type::<FarmError>();
            base.setattr("code", "UNKNOWN")?;
            m.add("FarmError", base)?;
            $(
                let class = py.get_type::<$name>();
                class.setattr("code", $wire)?;
                m.add(stringify!($name), class)?;
            )*
            Ok(())
        }
    };
}

codes! {
    Cancelled => Cancelled, "CANCELLED";
    Unknown => Unknown, "UNKNOWN";
    InvalidArgument => InvalidArgument, "INVALID_ARGUMENT";
    DeadlineExceeded => DeadlineExceeded, "DEADLINE_EXCEEDED";
    NotFound => NotFound, "NOT_FOUND";
    AlreadyExists => AlreadyExists, "ALREADY_EXISTS";
    PermissionDenied => PermissionDenied, "PERMISSION_DENIED";
    ResourceExhausted => ResourceExhausted, "RESOURCE_EXHAUSTED";
    FailedPrecondition => FailedPrecondition, "FAILED_PRECONDITION";
    Aborted => Aborted, "ABORTED";
    OutOfRange => OutOfRange, "OUT_OF_RANGE";
    Unimplemented => Unimplemented, "UNIMPLEMENTED";
    Internal => Internal, "INTERNAL";
    Unavailable => Unavailable, "UNAVAILABLE";
    DataLoss => DataLoss, "DATA_LOSS";
    Unauthenticated => Unauthenticated, "UNAUTHENTICATED";
}

/// A client call's failure as the exception of its code, carrying the master's message.
pub fn from_client(e: ClientError) -> PyErr {
    match e {
        ClientError::Status(status) => by_code(status.code(), status.message().to_string()),
        ClientError::Connect { .. } | ClientError::MasterLost { .. } => {
            Unavailable::new_err(e.to_string())
        }
        ClientError::JobGone(_) => NotFound::new_err(e.to_string()),
        ClientError::Malformed(_) => Internal::new_err(e.to_string()),
    }
}

/// A spec this side refuses before sending it.
pub fn invalid(message: impl Into<String>) -> PyErr {
    InvalidArgument::new_err(message.into())
}
