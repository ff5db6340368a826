//! Submitting the job the flags describe and taking its result, for `farm submit` and
//! `farm run` alike: the spec from the flags, the `--out` check, the submit (with its module
//! for wasm), and once the job ended, `--joblog` and the result's delivery.

use crate::args::JobArgs;
use crate::deliver::{deliver, Delivery};
use crate::fail::Usage;
use anyhow::Result;
use farm_client::{Client, JobStatus, Submitted};
use farm_proto::{JobSpec, OutputShape};
use std::path::Path;

/// The job spec from the flags; a bad flag is a usage error.
pub(crate) fn spec(args: &JobArgs) -> Result<JobSpec> {
    crate::job::spec(args).map_err(|e| Usage(format!("{e:#}")).into())
}

/// Submits `spec` (uploading `module` first for a wasm job), after checking `--out`.
pub(crate) async fn submit(
    client: &mut Client,
    spec: &JobSpec,
    module: Option<&[u8]>,
    args: &JobArgs,
) -> Result<Submitted> {
    check_out(client, &spec.kind, args.out.as_deref()).await?;
    Ok(match module {
        Some(wasm) => client.submit_wasm(wasm, spec.clone()).await?,
        None => client.submit(spec.clone()).await?,
    })
}

/// Once the job ended: writes `--joblog`, then delivers the result as the flags ask.
pub(crate) async fn finish(
    client: &mut Client,
    status: &JobStatus,
    spec: &JobSpec,
    args: &JobArgs,
    json: bool,
) -> Result<()> {
    if let Some(path) = &args.joblog {
        crate::logs::write_joblog(client, status.job, status.shards, path).await?;
    }
    let how =
        Delivery { json, out: args.out.as_deref(), ndjson: args.ndjson, params: &spec.params };
    deliver(client, status, &how).await
}

/// Refuses `--out FILE.png` for a kind whose declared output is not rows of numbers (an
/// image), before any work is submitted. A kind the master does not know is left to the
/// submit, which names what the cluster offers.
async fn check_out(client: &mut Client, kind: &str, out: Option<&Path>) -> Result<()> {
    let Some(path) = out.filter(|p| crate::results::is_png(p)) else { return Ok(()) };
    let kinds = client.kinds().await?;
    let Some(info) = kinds.iter().find(|k| k.kernel.kind == kind) else { return Ok(()) };
    match info.kernel.output {
        OutputShape::Rows | OutputShape::Any => Ok(()),
        shape => Err(Usage(format!(
            "--out {}: a PNG needs rows of numbers (an image, as mandelbrot makes), but {kind} \
             makes {}; name the file .json to keep the result",
            path.display(),
            shape_words(shape)
        ))
        .into()),
    }
}

fn shape_words(shape: OutputShape) -> &'static str {
    match shape {
        OutputShape::Any | OutputShape::Rows => "rows",
        OutputShape::Count => "a count",
        OutputShape::Fraction { .. } => "a fraction",
        OutputShape::Lines => "lines of text",
        OutputShape::Exec => "program runs",
    }
}
