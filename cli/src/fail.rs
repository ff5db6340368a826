//! How a command that failed says so: one line on stderr, `error: …`, or with `--json` one JSON
//! object on stderr, `{"error": "…", "code": "InvalidArgument"}`; either way a non-zero exit.
//! stdout keeps only what the command produced (a failed job's status, with `--json`).

use farm_client::ClientError;
use std::ffi::OsString;

/// A job that ended without succeeding; the command has printed its status already.
#[derive(Debug)]
pub struct JobEnded {
    /// The job.
    pub job: u64,
    /// How it ended.
    pub state: farm_proto::JobState,
    /// Why.
    pub error: Option<String>,
}

impl std::fmt::Display for JobEnded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let why = self.error.as_deref().unwrap_or("no reason given");
        write!(f, "job {} {}: {why}", self.job, self.state)
    }
}

impl std::error::Error for JobEnded {}

/// The command was interrupted (Ctrl-C or SIGTERM): it says what became of the job in one
/// line and exits 130, as a shell reports a command killed by SIGINT.
#[derive(Debug)]
pub struct Interrupted(pub String);

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Interrupted {}

/// The exit code of an interrupted command.
pub const INTERRUPTED_EXIT: u8 = 130;

/// Whether `e` is an interruption.
pub fn is_interrupted(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<Interrupted>())
}

/// A mistake in the command line (a bad flag value the CLI found, not the master).
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// Whether the command line asks for JSON (looked at before, or without, clap's parse).
pub fn wants_json(argv: &[OsString]) -> bool {
    argv.iter().skip(1).take_while(|a| *a != "--").any(|a| a == "--json")
}

/// The code of a failure: the gRPC status code's name when the master refused, else what
/// kind of failure it was.
pub fn code(e: &anyhow::Error) -> String {
    for cause in e.chain() {
        if let Some(client) = cause.downcast_ref::<ClientError>() {
            return match client {
                ClientError::Status(status) => format!("{:?}", status.code()),
                ClientError::Connect { .. } | ClientError::MasterLost { .. } => {
                    "Unavailable".to_string()
                }
                ClientError::JobGone(_) => "NotFound".to_string(),
                ClientError::Malformed(_) => "Internal".to_string(),
            };
        }
        if let Some(status) = cause.downcast_ref::<tonic::Status>() {
            return format!("{:?}", status.code());
        }
        if let Some(ended) = cause.downcast_ref::<JobEnded>() {
            return match ended.state {
                farm_proto::JobState::Cancelled => "JobCancelled",
                _ => "JobFailed",
            }
            .to_string();
        }
        if cause.is::<Interrupted>() {
            return "Interrupted".to_string();
        }
        if cause.is::<Usage>() || cause.is::<farm_proto::SpecError>() || cause.is::<clap::Error>() {
            return "InvalidArgument".to_string();
        }
    }
    "Unknown".to_string()
}

/// The JSON form of a failure.
pub fn json(e: &anyhow::Error) -> serde_json::Value {
    serde_json::json!({ "error": format!("{e:#}"), "code": code(e) })
}

/// Says on stderr that the command failed, as text or JSON.
pub fn report(e: &anyhow::Error, json_out: bool) {
    if json_out {
        eprintln!("{}", json(e));
    } else {
        // One line, whatever the message carries: a job's error may quote a program's stderr.
        eprintln!("error: {}", crate::out::escaped(&format!("{e:#}"), false));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_name_the_status_or_the_kind_of_failure() {
        let refused = anyhow::Error::new(ClientError::Status(tonic::Status::invalid_argument("x")));
        assert_eq!(json(&refused)["code"], "InvalidArgument");
        let gone = anyhow::Error::new(ClientError::Connect { url: "u".into(), reason: "r".into() });
        assert_eq!(code(&gone), "Unavailable");
        let failed = anyhow::Error::new(JobEnded {
            job: 3,
            state: farm_proto::JobState::Failed,
            error: Some("boom".into()),
        });
        assert_eq!(
            json(&failed),
            serde_json::json!({"error": "job 3 failed: boom", "code": "JobFailed"})
        );
        assert_eq!(code(&anyhow::Error::new(Usage("bad".into()))), "InvalidArgument");
        assert_eq!(code(&anyhow::anyhow!("other")), "Unknown");
    }

    #[test]
    fn json_is_asked_for_before_any_parse() {
        let argv = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
        assert!(wants_json(&argv(&["farm", "jobs", "--json"])));
        assert!(!wants_json(&argv(&["farm", "jobs"])));
        assert!(!wants_json(&argv(&["farm", "run", "exec", "--", "--json"])));
    }
}
