//! Kernel descriptors: what a worker says about each kernel it offers (its params, with type,
//! default, bounds and help, and the shape of its output). Workers send them at registration;
//! the master checks a submission against them, so it never links worker code; the worker's
//! registry checks the same way before a kernel parses its params. Conversions from and to the
//! prost types are at the end of this file.

use crate::domain::{Params, MAX_NAME_BYTES};
use crate::pb;
use serde::Serialize;
use std::fmt;

/// The quoting helpers, also named from here by the crates that check kernels and params.
pub use crate::quote::{clip, quote, truncate};

/// Most kernels one worker may offer.
pub const MAX_KERNELS: usize = 256;
/// Most params one kernel may declare.
pub const MAX_PARAMS: usize = 64;
pub use names::{is_name_char, MAX_KIND_BYTES};
/// Longest help line or text default.
pub const MAX_TEXT_BYTES: usize = 1024;

/// Checks what a worker offers against the limits above, so that no registration can grow the
/// master without bound (a worker once registered a million kinds and cost it 170 MiB).
pub fn check_limits(kernels: &[KernelDescriptor]) -> Result<(), ParamError> {
    if kernels.len() > MAX_KERNELS {
        return Err(ParamError(format!(
            "{} kernels offered, at most {MAX_KERNELS}",
            kernels.len()
        )));
    }
    let long = |what: &str, text: &str, max: usize| {
        (text.len() > max)
            .then(|| ParamError(format!("{what} {} is over {max} bytes", quote(text))))
    };
    for k in kernels {
        let params = k.params.as_deref().unwrap_or_default();
        names::check("kind", &k.kind, MAX_KIND_BYTES)?;
        if params.len() > MAX_PARAMS {
            return Err(ParamError(format!(
                "kernel {} declares {} params, at most {MAX_PARAMS}",
                clip(&k.kind),
                params.len()
            )));
        }
        let texts = params.iter().flat_map(|p| {
            let default = match &p.kind {
                ParamKind::Text { default } => default.as_deref(),
                _ => None,
            };
            [
                long("help", &p.help, MAX_TEXT_BYTES),
                default.and_then(|d| long("default", d, MAX_TEXT_BYTES)),
            ]
        });
        params.iter().try_for_each(|p| names::check("param name", &p.name, MAX_NAME_BYTES))?;
        let own = std::iter::once(long("help", &k.help, MAX_TEXT_BYTES));
        if let Some(e) = own.chain(texts).flatten().next() {
            return Err(e);
        }
    }
    Ok(())
}

/// What a kernel declares about itself.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KernelDescriptor {
    /// The name jobs use to ask for it.
    pub kind: String,
    /// One line on what it computes, shown by `farm kinds`.
    pub help: String,
    /// The params it takes, or `None` when it declared none: any params then pass unchecked.
    pub params: Option<Vec<ParamSpec>>,
    /// Params beyond those declared pass to the kernel unchecked (the declared ones are still
    /// checked): for a kernel that hands them on, like `wasm` to its module.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub extra_params: bool,
    /// How the master reduces its outputs.
    pub output: OutputShape,
}

/// One param of a kernel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParamSpec {
    /// The name in `--param name=value`.
    pub name: String,
    /// One line of help.
    pub help: String,
    /// Its type, with default and bounds.
    pub kind: ParamKind,
    /// The job must set it.
    pub required: bool,
    /// A whole number the job's indices must stay below (mandelbrot's `height` bounds its
    /// rows): a job whose range or input goes past it is refused at submit.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub bounds_indices: bool,
}

/// A param's type, default and inclusive bounds.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ParamKind {
    /// A whole number.
    Uint {
        /// Used when the job does not set it.
        default: Option<u64>,
        /// Smallest accepted value.
        min: u64,
        /// Largest accepted value.
        max: u64,
    },
    /// A finite floating-point number.
    Float {
        /// Used when the job does not set it.
        default: Option<f64>,
        /// Smallest accepted value.
        min: f64,
        /// Largest accepted value.
        max: f64,
    },
    /// Text; never empty when set.
    Text {
        /// Used when the job does not set it.
        default: Option<String>,
    },
}

/// How shard outputs become the job result.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "shape", rename_all = "lowercase")]
pub enum OutputShape {
    /// Not declared: reduced by the variant each shard returns.
    Any,
    /// Counts, summed.
    Count,
    /// Hits out of samples, summed; the result adds `estimate = scale × hits / samples`.
    Fraction {
        /// Multiplies the hit ratio (4 for π from a quarter circle).
        scale: f64,
    },
    /// Strings, one per index, joined in index order.
    Lines,
    /// Rows of numbers, one per index, joined in index order.
    Rows,
    /// Program runs, one per index, joined in index order.
    Exec,
}

impl OutputShape {
    /// Whether the job result is a list in index order (lines, rows, program runs), read with
    /// `Results`, rather than one value in the status (a count, a fraction). `Any` is not:
    /// a job reports its resolved shape once it ended.
    pub fn is_list(self) -> bool {
        matches!(self, OutputShape::Lines | OutputShape::Rows | OutputShape::Exec)
    }
}

/// Its name as the JSON has it (`count`, `fraction`), with a fraction's scale: what logs show.
impl std::fmt::Display for OutputShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OutputShape::Any => f.write_str("any"),
            OutputShape::Count => f.write_str("count"),
            OutputShape::Fraction { scale } => write!(f, "fraction (scale {scale})"),
            OutputShape::Lines => f.write_str("lines"),
            OutputShape::Rows => f.write_str("rows"),
            OutputShape::Exec => f.write_str("exec"),
        }
    }
}

/// One kind the cluster offers (`ListKinds`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KindInfo {
    /// The newest description of the kind.
    pub kernel: KernelDescriptor,
    /// Connected workers offering it; 0 for a kind known from a worker that has left.
    pub workers: u32,
}

/// Why a job's params were refused; the message names the param and quotes at most a few
/// dozen bytes of the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParamError(pub String);

impl KernelDescriptor {
    /// A kernel that takes no params yet (add them with [`KernelDescriptor::param`]).
    pub fn new(kind: impl Into<String>, output: OutputShape, help: impl Into<String>) -> Self {
        KernelDescriptor {
            kind: kind.into(),
            help: help.into(),
            params: Some(Vec::new()),
            extra_params: false,
            output,
        }
    }

    /// A kernel that declared nothing: any params, any output variant.
    pub fn open(kind: impl Into<String>) -> Self {
        KernelDescriptor {
            kind: kind.into(),
            help: String::new(),
            params: None,
            extra_params: false,
            output: OutputShape::Any,
        }
    }

    /// Lets params beyond the declared ones through unchecked (see
    /// [`KernelDescriptor::extra_params`]).
    pub fn open_params(mut self) -> Self {
        self.extra_params = true;
        self
    }

    /// Adds a param.
    pub fn param(mut self, spec: ParamSpec) -> Self {
        self.params.get_or_insert_with(Vec::new).push(spec);
        self
    }

    /// Checks a job's params: no unknown name, each value of its type and within its bounds,
    /// every required one set. Returns the params with defaults filled in and numbers trimmed,
    /// which is what the kernel then reads (`Params::uint` and friends).
    pub fn check(&self, params: &Params) -> Result<Params, ParamError> {
        let Some(specs) = &self.params else { return Ok(params.clone()) };
        let unknown = params.0.keys().find(|k| !specs.iter().any(|s| &s.name == *k));
        if let (Some(name), false) = (unknown, self.extra_params) {
            let known: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
            let known = if known.is_empty() { "none".to_string() } else { known.join(", ") };
            return Err(ParamError(format!(
                "unknown param {} for kernel {}; known: {known}",
                clip(name),
                clip(&self.kind)
            )));
        }
        let mut checked = Params::default();
        if self.extra_params {
            let extra = params.0.iter().filter(|(k, _)| !specs.iter().any(|s| &s.name == *k));
            checked.0.extend(extra.map(|(k, v)| (k.clone(), v.clone())));
        }
        for spec in specs {
            if let Some(value) = spec.value(params.0.get(&spec.name).map(String::as_str))? {
                checked.0.insert(spec.name.clone(), value);
            }
        }
        Ok(checked)
    }
}

impl ParamSpec {
    /// A param named `name` of `kind`, optional unless `required`.
    fn new(name: &str, help: &str, kind: ParamKind, required: bool) -> Self {
        ParamSpec { name: name.into(), help: help.into(), kind, required, bounds_indices: false }
    }

    /// A whole-number param with a default and inclusive bounds.
    pub fn uint(name: &str, default: u64, min: u64, max: u64, help: &str) -> Self {
        Self::new(name, help, ParamKind::Uint { default: Some(default), min, max }, false)
    }

    /// A floating-point param with a default and inclusive bounds.
    pub fn float(name: &str, default: f64, min: f64, max: f64, help: &str) -> Self {
        Self::new(name, help, ParamKind::Float { default: Some(default), min, max }, false)
    }

    /// A text param the job must set.
    pub fn required_text(name: &str, help: &str) -> Self {
        Self::new(name, help, ParamKind::Text { default: None }, true)
    }

    /// A text param with a default (for a yes/no flag: "false", read with [`Params::flag`]).
    pub fn text(name: &str, default: &str, help: &str) -> Self {
        Self::new(name, help, ParamKind::Text { default: Some(default.into()) }, false)
    }

    /// Marks a whole-number param as the bound of the job's indices (see
    /// [`ParamSpec::bounds_indices`]).
    pub fn bounding_indices(mut self) -> Self {
        self.bounds_indices = true;
        self
    }

    /// The checked value of this param, given the job's raw value (if set).
    fn value(&self, raw: Option<&str>) -> Result<Option<String>, ParamError> {
        let name = &self.name;
        let Some(raw) = raw else {
            if self.required {
                return Err(ParamError(format!("missing param {name}")));
            }
            return Ok(self.kind.default_text());
        };
        let bad = |why: String| ParamError(format!("bad param {name}: {why}"));
        match &self.kind {
            ParamKind::Uint { min, max, .. } => {
                let v: u64 = raw
                    .trim()
                    .parse()
                    .map_err(|_| bad(format!("{} is not a whole number", quote(raw))))?;
                in_bounds(v, *min, *max).map_err(bad)?;
                Ok(Some(v.to_string()))
            }
            ParamKind::Float { min, max, .. } => {
                let v = raw.trim().parse::<f64>().ok().filter(|v| v.is_finite());
                let v = v.ok_or_else(|| bad(format!("{} is not a finite number", quote(raw))))?;
                in_bounds(v, *min, *max).map_err(bad)?;
                Ok(Some(raw.trim().to_string()))
            }
            ParamKind::Text { .. } if raw.trim().is_empty() => Err(bad("must not be empty".into())),
            ParamKind::Text { .. } => Ok(Some(raw.to_string())),
        }
    }
}

impl ParamKind {
    /// The default, written as a job would write it.
    fn default_text(&self) -> Option<String> {
        match self {
            ParamKind::Uint { default, .. } => default.map(|v| v.to_string()),
            ParamKind::Float { default, .. } => default.map(|v| v.to_string()),
            ParamKind::Text { default } => default.clone(),
        }
    }

    /// The type's name, as `farm kinds` shows it.
    pub fn type_name(&self) -> &'static str {
        match self {
            ParamKind::Uint { .. } => "uint",
            ParamKind::Float { .. } => "float",
            ParamKind::Text { .. } => "text",
        }
    }
}

fn in_bounds<T: PartialOrd + fmt::Display>(v: T, min: T, max: T) -> Result<(), String> {
    if v < min {
        Err(format!("must be at least {min}, got {v}"))
    } else if v > max {
        Err(format!("must be at most {max}, got {v}"))
    } else {
        Ok(())
    }
}

impl Params {
    /// Param `name` as a whole number. Meant for params already checked against a descriptor
    /// (defaults filled in), where it cannot fail; a kernel without a descriptor gets a clear
    /// error for a missing or malformed value.
    pub fn uint(&self, name: &str) -> Result<u64, ParamError> {
        let raw = self.0.get(name).ok_or_else(|| ParamError(format!("missing param {name}")))?;
        raw.trim().parse().map_err(|_| {
            ParamError(format!("bad param {name}: {} is not a whole number", quote(raw)))
        })
    }

    /// Param `name` as a finite number (see [`Params::uint`]).
    pub fn float(&self, name: &str) -> Result<f64, ParamError> {
        let raw = self.0.get(name).ok_or_else(|| ParamError(format!("missing param {name}")))?;
        raw.trim().parse::<f64>().ok().filter(|v| v.is_finite()).ok_or_else(|| {
            ParamError(format!("bad param {name}: {} is not a finite number", quote(raw)))
        })
    }

    /// Param `name` as a yes/no flag: `true`, `yes` or `1`; `false`, `no` or `0` (see
    /// [`Params::uint`]).
    pub fn flag(&self, name: &str) -> Result<bool, ParamError> {
        let raw = self.text(name)?;
        match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Ok(true),
            "false" | "no" | "0" => Ok(false),
            _ => Err(ParamError(format!("bad param {name}: {} is not true or false", quote(raw)))),
        }
    }

    /// Param `name` as text (see [`Params::uint`]).
    pub fn text(&self, name: &str) -> Result<&str, ParamError> {
        self.0
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| ParamError(format!("missing param {name}")))
    }
}

mod convert;
mod indices;
mod names;

#[cfg(test)]
#[path = "kernel_tests.rs"]
mod tests;
