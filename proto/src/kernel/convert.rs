//! Kernel descriptors from and to their prost types: to the wire is `From`, from it `TryFrom`,
//! refusing unknown types, unparsable or non-finite bounds and defaults.

use super::*;

impl From<&KindInfo> for pb::KindInfo {
    fn from(k: &KindInfo) -> Self {
        pb::KindInfo { kernel: Some((&k.kernel).into()), workers: k.workers }
    }
}

impl TryFrom<pb::KindInfo> for KindInfo {
    type Error = ParamError;

    fn try_from(k: pb::KindInfo) -> Result<Self, ParamError> {
        let kernel = k.kernel.ok_or_else(|| ParamError("kind info without a kernel".into()))?;
        Ok(KindInfo { kernel: kernel.try_into()?, workers: k.workers })
    }
}

impl From<&KernelDescriptor> for pb::KernelDescriptor {
    fn from(d: &KernelDescriptor) -> Self {
        let (output, fraction_scale) = d.output.to_wire();
        pb::KernelDescriptor {
            kind: d.kind.clone(),
            help: d.help.clone(),
            params: d.params.iter().flatten().map(pb::ParamSpec::from).collect(),
            open_params: d.params.is_none(),
            extra_params: d.extra_params,
            output,
            fraction_scale,
        }
    }
}

impl From<&ParamSpec> for pb::ParamSpec {
    fn from(s: &ParamSpec) -> Self {
        let (ty, min, max) = match &s.kind {
            ParamKind::Uint { min, max, .. } => {
                (pb::ParamType::Uint, Some(min.to_string()), Some(max.to_string()))
            }
            ParamKind::Float { min, max, .. } => {
                (pb::ParamType::Float, Some(min.to_string()), Some(max.to_string()))
            }
            ParamKind::Text { .. } => (pb::ParamType::String, None, None),
        };
        pb::ParamSpec {
            name: s.name.clone(),
            r#type: ty as i32,
            default_value: s.kind.default_text(),
            required: s.required,
            min,
            max,
            help: s.help.clone(),
            bounds_indices: s.bounds_indices,
        }
    }
}

impl TryFrom<pb::KernelDescriptor> for KernelDescriptor {
    type Error = ParamError;

    fn try_from(d: pb::KernelDescriptor) -> Result<Self, ParamError> {
        let output = OutputShape::from_wire(d.output, d.fraction_scale).ok_or_else(|| {
            ParamError(format!("kernel {}: fraction scale is not finite", quote(&d.kind)))
        })?;
        let params = if d.open_params {
            None
        } else {
            Some(d.params.into_iter().map(ParamSpec::try_from).collect::<Result<_, _>>()?)
        };
        let extra_params = d.extra_params;
        Ok(KernelDescriptor { kind: d.kind, help: d.help, params, extra_params, output })
    }
}

impl TryFrom<pb::ParamSpec> for ParamSpec {
    type Error = ParamError;

    fn try_from(s: pb::ParamSpec) -> Result<Self, ParamError> {
        let bad = |what: &str| ParamError(format!("param {}: bad {what}", quote(&s.name)));
        let kind = match pb::ParamType::try_from(s.r#type) {
            Ok(pb::ParamType::Uint) => ParamKind::Uint {
                default: parse_opt(&s.default_value).map_err(|_| bad("default"))?,
                min: parse_opt(&s.min).map_err(|_| bad("min"))?.unwrap_or(0),
                max: parse_opt(&s.max).map_err(|_| bad("max"))?.unwrap_or(u64::MAX),
            },
            Ok(pb::ParamType::Float) => {
                // NaN and infinities make no bound and no default.
                let finite = |v: Option<f64>, what| match v {
                    Some(v) if !v.is_finite() => Err(bad(what)),
                    v => Ok(v),
                };
                let parse = |raw, what| finite(parse_opt(raw).map_err(|_| bad(what))?, what);
                ParamKind::Float {
                    default: parse(&s.default_value, "default")?,
                    min: parse(&s.min, "min")?.unwrap_or(f64::MIN),
                    max: parse(&s.max, "max")?.unwrap_or(f64::MAX),
                }
            }
            Ok(pb::ParamType::String) => ParamKind::Text { default: s.default_value.clone() },
            Ok(pb::ParamType::Unspecified) | Err(_) => return Err(bad("type")),
        };
        let (name, help, required, bounds_indices) = (s.name, s.help, s.required, s.bounds_indices);
        Ok(ParamSpec { name, help, kind, required, bounds_indices })
    }
}

fn parse_opt<T: std::str::FromStr>(raw: &Option<String>) -> Result<Option<T>, T::Err> {
    raw.as_deref().map(|r| r.trim().parse()).transpose()
}

impl OutputShape {
    /// The wire enum (as `i32`) and the fraction scale (0 unless a fraction).
    pub fn to_wire(self) -> (i32, f64) {
        let (shape, scale) = match self {
            OutputShape::Any => (pb::OutputShape::Unspecified, 0.0),
            OutputShape::Count => (pb::OutputShape::Count, 0.0),
            OutputShape::Fraction { scale } => (pb::OutputShape::Fraction, scale),
            OutputShape::Lines => (pb::OutputShape::Lines, 0.0),
            OutputShape::Rows => (pb::OutputShape::Rows, 0.0),
            OutputShape::Exec => (pb::OutputShape::Exec, 0.0),
        };
        (shape as i32, scale)
    }

    /// From the wire enum and scale: an unknown value is `Any`; `None` for a fraction whose
    /// scale is not finite.
    pub fn from_wire(shape: i32, scale: f64) -> Option<Self> {
        Some(match pb::OutputShape::try_from(shape) {
            Ok(pb::OutputShape::Unspecified) | Err(_) => OutputShape::Any,
            Ok(pb::OutputShape::Count) => OutputShape::Count,
            Ok(pb::OutputShape::Fraction) if scale.is_finite() => OutputShape::Fraction { scale },
            Ok(pb::OutputShape::Fraction) => return None,
            Ok(pb::OutputShape::Lines) => OutputShape::Lines,
            Ok(pb::OutputShape::Rows) => OutputShape::Rows,
            Ok(pb::OutputShape::Exec) => OutputShape::Exec,
        })
    }
}
