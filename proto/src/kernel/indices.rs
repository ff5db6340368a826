//! Params that bound a job's indices (mandelbrot's `height` bounds its rows): a job whose
//! range or input goes past one is refused at submit, not failed shard by shard.

use super::{KernelDescriptor, ParamError};
use crate::domain::{JobSource, Params};

impl KernelDescriptor {
    /// Checks a job's indices against the params that bound them, given the job's `checked`
    /// params (what [`KernelDescriptor::check`] returned): a range must end at or below each
    /// bound, an input line that is a whole number must be below it.
    pub fn check_indices(&self, checked: &Params, source: &JobSource) -> Result<(), ParamError> {
        let bounds = self.params.iter().flatten().filter(|s| s.bounds_indices);
        for spec in bounds {
            let Ok(bound) = checked.uint(&spec.name) else { continue };
            let past = match source {
                JobSource::Range { start, end, .. } => {
                    (*end > bound).then(|| format!("range {start}..{end}"))
                }
                JobSource::Inputs(lines) => lines.iter().enumerate().find_map(|(i, line)| {
                    let v = line.trim().parse::<u64>().ok().filter(|&v| v >= bound)?;
                    Some(format!("input line {} ({v})", i + 1))
                }),
            };
            if let Some(past) = past {
                let name = &spec.name;
                return Err(ParamError(format!(
                    "{past} goes past {name}={bound}: indices must be below {name}"
                )));
            }
        }
        Ok(())
    }
}
