//! JSON values and serde types to Python objects: `None`, `bool`, `int`, `float`, `str`,
//! `list`, `dict`.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use serde_json::Value;

/// A JSON value as the Python object `json.loads` would make.
pub fn to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Value::String(s) => s.into_pyobject(py)?.into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, v) in map {
                dict.set_item(k, to_py(py, v)?)?;
            }
            dict.into_any()
        }
    })
}

/// A serde type (a status, a worker, a kind) as the dict of its JSON shape, the CLI's `--json`.
pub fn ser_to_py<'py, T: serde::Serialize>(
    py: Python<'py>,
    value: &T,
) -> PyResult<Bound<'py, PyAny>> {
    let value = serde_json::to_value(value)
        .map_err(|e| crate::errors::Internal::new_err(format!("cannot render a reply: {e}")))?;
    to_py(py, &value)
}

/// One JSON document's text (a result item) as a Python object.
pub fn text_to_py<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyAny>> {
    // The common case, a LINES item, skips building a `Value`.
    if let Ok(s) = serde_json::from_str::<String>(text) {
        return Ok(s.into_pyobject(py)?.into_any());
    }
    let value: Value = serde_json::from_str(text)
        .map_err(|e| crate::errors::DataLoss::new_err(format!("a result item is not JSON: {e}")))?;
    to_py(py, &value)
}
