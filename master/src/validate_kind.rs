//! Submit-time validation of a job's kind and params, with the worker crate's own registry.

use crate::actor::SubmitError;
use crate::core::Core;
use farm_proto::JobSpec;
use farm_worker::Registry;

/// Built-in kinds must have valid parameters; other kinds (exec, user kernels) must be offered
/// by a connected worker.
pub(crate) fn check_kind(
    core: &Core,
    validator: &Registry,
    spec: &JobSpec,
) -> Result<(), SubmitError> {
    if validator.contains(&spec.kind) {
        validator
            .prepare(&spec.kind, &spec.params)
            .map_err(|e| SubmitError::Invalid(format!("{}: {e}", spec.kind)))?;
        if spec.kind == "exec" && !core.kind_offered("exec") {
            return Err(SubmitError::NotOffered(
                "no connected worker allows exec (start workers with --allow-exec)".into(),
            ));
        }
        return Ok(());
    }
    if core.kind_offered(&spec.kind) {
        return Ok(());
    }
    Err(SubmitError::Invalid(format!(
        "unknown kind {}; known: {}",
        spec.kind,
        validator.kinds().join(", ")
    )))
}
