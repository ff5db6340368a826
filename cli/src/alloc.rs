//! `farm alloc`: allocation queues, through which the master submits worker allocations to a
//! batch scheduler (Slurm) while shards wait; and the master's allocation settings from the
//! flags that say how allocated workers reach it (`args/alloc.rs`).

use crate::args::{AllocAction, AllocArgs, AllocMasterArgs};
use crate::conn::{connect, Target};
use crate::tables;
use anyhow::{Context, Result};
use farm_client::{AllocQueueInfo, AllocQueueSpec};
use farm_master::autoalloc::{AllocSettings, SbatchPolicy, DEFAULT_ALLOWED};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The operator's sbatch policy from `--alloc-allow-option` and `--alloc-fixed-arg`.
fn sbatch_policy(args: &AllocMasterArgs) -> Result<SbatchPolicy> {
    let allowed: Vec<String> = match args.alloc_allow_option.as_deref() {
        None => DEFAULT_ALLOWED.iter().map(|s| s.to_string()).collect(),
        Some([none]) if none.trim() == "none" => Vec::new(),
        Some(names) => names.to_vec(),
    };
    SbatchPolicy::new(&allowed, args.alloc_fixed_arg.clone())
        .map_err(|e| anyhow::Error::new(crate::fail::Usage(e)))
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// The master's allocation settings from its flags: the URL allocated workers dial, the
/// folder for this master's scripts, the token they present and TLS files they use.
pub fn settings(
    args: &AllocMasterArgs,
    addr: SocketAddr,
    scheme: &str,
    worker_token: Option<String>,
    me: &Target,
) -> Result<AllocSettings> {
    let master_url = match &args.advertise {
        Some(url) => farm_net::tls::dial_url(url, scheme == "https"),
        None if addr.ip().is_unspecified() => format!("{scheme}://{}:{}", host_name(), addr.port()),
        None => format!("{scheme}://{addr}"),
    };
    let base = match &args.alloc_dir {
        Some(dir) => dir.clone(),
        None => std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir)
            .join(".farm/alloc"),
    };
    let base = std::path::absolute(&base).context("cannot resolve --alloc-dir")?;
    let kinds = crate::kinds::offered(false).into_iter().map(|k| k.kind).collect();
    Ok(AllocSettings {
        exe: std::env::current_exe().context("cannot find the farm executable")?,
        master_url,
        env: crate::conn::local_tls_env(me),
        token: worker_token,
        dir: base.join(format!("{}-{}", host_name(), std::process::id())),
        kinds,
        sbatch: sbatch_policy(args)?,
    })
}

/// `farm alloc …`.
pub async fn alloc(master: &Target, args: AllocArgs) -> Result<()> {
    let mut client = connect(master).await?;
    match args.action {
        AllocAction::Add(add) => {
            let spec = AllocQueueSpec {
                name: add.name.unwrap_or_default(),
                max_workers: add.max_workers,
                workers_per_alloc: add.workers_per_alloc,
                threads: add.threads,
                time_limit_ms: add.time_limit.map(|d| d.as_millis() as u64),
                idle_timeout_ms: add.idle_timeout.as_millis() as u64,
                extra_args: add.extra,
                ..AllocQueueSpec::slurm()
            };
            let info = client.alloc_add(spec).await?;
            if add.output.json {
                crate::out::json(&info)?;
            } else {
                crate::out::line(&info.spec.name)?;
            }
        }
        AllocAction::List(output) => print(&client.alloc_list().await?, output.json)?,
        AllocAction::Remove { name, now, output } => {
            print(&[client.alloc_remove(&name, now).await?], output.json)?
        }
    }
    Ok(())
}

fn duration(ms: Option<u64>) -> String {
    ms.map_or("-".into(), |ms| {
        let s = ms / 1000;
        match s {
            _ if s % 3600 == 0 => format!("{}h", s / 3600),
            _ if s % 60 == 0 => format!("{}m", s / 60),
            _ => format!("{s}s"),
        }
    })
}

/// Prints queues as tables (the queues, then their allocations), or as JSON.
fn print(queues: &[AllocQueueInfo], json: bool) -> Result<()> {
    if json {
        return crate::out::json(&queues);
    }
    let headers =
        ["QUEUE", "SCHEDULER", "STATE", "WORKERS", "PER-ALLOC", "THREADS", "TIME-LIMIT", "IDLE"];
    let mut table = tables::new(&[&headers[..], &["ERROR"]].concat());
    for q in queues {
        let s = &q.spec;
        let alive: u32 = q.allocations.iter().map(|a| a.workers).sum();
        tables::add_row(
            &mut table,
            vec![
                s.name.clone(),
                s.scheduler.as_str().to_string(),
                q.state.to_string(),
                format!("{alive}/{}", s.max_workers),
                s.workers_per_alloc.to_string(),
                s.threads.map_or("-".into(), |t| t.to_string()),
                duration(s.time_limit_ms),
                duration(Some(s.idle_timeout_ms)),
                q.error.clone().unwrap_or_else(|| "-".into()),
            ],
        );
    }
    let mut text = tables::render(table, &[3, 4, 5, 6, 7]);
    let allocations: Vec<_> =
        queues.iter().flat_map(|q| q.allocations.iter().map(move |a| (q, a))).collect();
    if !allocations.is_empty() {
        let headers = ["QUEUE", "ALLOCATION", "STATE", "WORKERS", "SEEN", "AGE", "DETAIL"];
        let mut table = tables::new(&headers);
        for (q, a) in allocations {
            tables::add_row(
                &mut table,
                vec![
                    q.spec.name.clone(),
                    a.id.clone(),
                    a.state.to_string(),
                    format!("{}/{}", a.workers, q.spec.workers_per_alloc),
                    a.workers_seen.to_string(),
                    tables::short(Duration::from_secs(a.age_secs)),
                    a.detail.clone(),
                ],
            );
        }
        text.push('\n');
        text.push_str(&tables::render(table, &[3, 4, 5]));
    }
    crate::out::write(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow: Option<&[&str]>, fixed: &[&str]) -> Result<SbatchPolicy> {
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        sbatch_policy(&AllocMasterArgs {
            advertise: None,
            alloc_dir: None,
            alloc_allow_option: allow.map(strings),
            alloc_fixed_arg: strings(fixed),
        })
    }

    #[test]
    fn the_operators_policy_comes_from_the_flags() {
        assert_eq!(policy(None, &[]).expect("default"), SbatchPolicy::default());
        assert!(policy(Some(&["none"]), &[]).expect("none").allowed.is_empty());
        let p = policy(Some(&["partition", "-A"]), &["--comment=x"]).expect("policy");
        assert_eq!(
            (p.allowed, p.fixed),
            (vec!["partition".into(), "account".into()], vec!["--comment=x".into()])
        );
        let bad = policy(Some(&["out put"]), &[]).expect_err("refused").to_string();
        assert!(bad.starts_with("--alloc-allow-option: "), "{bad}");
    }
}
