//! Client commands: submit, watch, status, cancel, jobs, workers; and the ones that need no
//! master: completions, man.

use crate::args::{
    CompletionsArgs, JobRef, JobsArgs, ReconnectArgs, SubmitArgs, WatchArgs, WorkersAction,
    WorkersArgs,
};
use crate::conn::{connect, Target};
use crate::deliver::{deliver, Delivery};
use crate::{out, show, submit};
use anyhow::Result;
use clap::CommandFactory;
use farm_client::{Client, JobStatus, WaitEvent, WaitOptions};

/// `farm submit`.
pub async fn submit(master: &Target, args: SubmitArgs) -> Result<()> {
    let spec = submit::spec(&args.job)?;
    if args.job.joblog.is_some() && !args.wait {
        anyhow::bail!("--joblog needs --wait: the log is written once the job ended");
    }
    let module = crate::job::module(&args.job)?;
    let mut client = connect(master).await?;
    let submitted = submit::submit(&mut client, &spec, module.as_deref(), &args.job).await?;
    if !args.wait {
        return if args.output.json { out::json(&submitted) } else { out::line(submitted.job) };
    }
    let status = follow(&mut client, submitted.job, &args.reconnect, args.output.json).await?;
    submit::finish(&mut client, &status, &spec, &args.job, args.output.json).await
}

/// `farm watch`.
pub async fn watch(master: &Target, args: WatchArgs) -> Result<()> {
    let mut client = connect(master).await?;
    let json = args.job.output.json;
    let status = follow(&mut client, args.job.id, &args.reconnect, json).await?;
    let params = farm_proto::Params::default();
    deliver(&mut client, &status, &Delivery { json, out: None, ndjson: false, params: &params })
        .await
}

/// Waits for a job with a progress bar, riding through a lost master, and says on stderr when
/// the master is lost and when it is back. Ctrl-C (or SIGTERM) stops waiting, not the job, and
/// says how to follow or cancel it.
async fn follow(
    client: &mut Client,
    job: u64,
    reconnect: &ReconnectArgs,
    json: bool,
) -> Result<JobStatus> {
    let bar = show::progress_bar(json);
    let options = WaitOptions { reconnect_for: reconnect.reconnect_for };
    let mut waiting = None;
    let wait = client.wait_with(job, &options, |event| match event {
        WaitEvent::Progress(p) => show::advance(&bar, p, &mut waiting),
        // The lines the client words: "lost the master; reconnecting for up to 60s".
        event => bar.suspend(|| eprintln!("{event}")),
    });
    let status = tokio::select! {
        status = wait => status,
        _ = farm_worker::cli::shutdown_signal() => {
            bar.finish_and_clear();
            return Err(crate::fail::Interrupted(show::still_running(job)).into());
        }
    };
    bar.finish_and_clear();
    Ok(status?)
}

/// `farm status`.
pub async fn status(master: &Target, args: JobRef) -> Result<()> {
    let status = connect(master).await?.get(args.id).await?;
    show::status(&status, args.output.json)
}

/// `farm cancel`.
pub async fn cancel(master: &Target, args: JobRef) -> Result<()> {
    let status = connect(master).await?.cancel(args.id).await?;
    show::status(&status, args.output.json)
}

/// The jobs that pass the filters, newest first, at most `limit` (0: all); and how many
/// passed but were left out.
pub fn select(mut jobs: Vec<JobStatus>, args: &JobsArgs) -> (Vec<JobStatus>, usize) {
    jobs.retain(|j| args.state.is_none_or(|s| s.admits(j.state)));
    jobs.retain(|j| args.kind.as_deref().is_none_or(|k| j.kind == k));
    jobs.sort_by_key(|j| std::cmp::Reverse(j.job));
    let left_out = if args.limit > 0 { jobs.len().saturating_sub(args.limit) } else { 0 };
    jobs.truncate(jobs.len() - left_out);
    (jobs, left_out)
}

/// `farm jobs`.
pub async fn jobs(master: &Target, args: JobsArgs) -> Result<()> {
    let all = connect(master).await?.list_jobs(args.mine).await?;
    let (jobs, left_out) = select(all, &args);
    show::jobs(&jobs, args.output.json)?;
    if left_out > 0 {
        eprintln!("{left_out} older jobs not shown (--limit {}; --limit 0 shows all)", args.limit);
    }
    Ok(())
}

/// `farm workers` and `farm workers drain ID`.
pub async fn workers(master: &Target, args: WorkersArgs) -> Result<()> {
    let mut client = connect(master).await?;
    let workers = match args.action {
        Some(WorkersAction::Drain { id }) => vec![client.drain_worker(id).await?],
        None => client.workers().await?,
    };
    if args.output.json {
        return out::json(&workers);
    }
    out::write(&crate::tables::workers(&workers))
}

/// `farm completions SHELL`.
pub fn completions(args: CompletionsArgs) -> Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut crate::args::Cli::command(), "farm", &mut script);
    out::write(&String::from_utf8_lossy(&script))
}

/// `farm man`.
pub fn man() -> Result<()> {
    out::write(&String::from_utf8_lossy(&man_pages()?))
}

/// farm's man page, then one for each command (`farm-run`, `farm-alloc-add`, …) with its
/// flags, in one roff text: `man` shows them one after the other.
fn man_pages() -> Result<Vec<u8>> {
    let mut cli = crate::args::Cli::command();
    // Propagates the global flags to every command, so each page lists them.
    cli.build();
    let mut page = Vec::new();
    clap_mangen::Man::new(cli.clone()).render(&mut page)?;
    man_pages_below(&cli, "farm", &mut page)?;
    Ok(page)
}

/// The pages of `command`'s commands (named `name`) and of theirs, in order.
fn man_pages_below(command: &clap::Command, name: &str, page: &mut Vec<u8>) -> Result<()> {
    // Not the `help` commands clap adds.
    for sub in command.get_subcommands().filter(|c| c.get_name() != "help") {
        let name = format!("{name}-{}", sub.get_name());
        let titled = sub.clone().name(name.clone()).bin_name(name.replace('-', " "));
        clap_mangen::Man::new(titled).render(page)?;
        man_pages_below(sub, &name, page)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::lists::StateFilter;
    use crate::args::{Cli, Command};
    use clap::Parser;
    use farm_client::{JobState, JsonText};

    fn job(id: u64, kind: &str, state: JobState) -> JobStatus {
        JobStatus {
            job: id,
            kind: kind.into(),
            state,
            shards: 1,
            done: 0,
            in_flight: 0,
            result: JsonText::null(),
            error: None,
            elapsed_ms: 0,
            priority: 0,
            reruns: 0,
            submitted_unix_ms: 0,
            result_in_store: false,
            result_left_out: false,
            waiting: None,
            output: farm_proto::OutputShape::Count,
            owner: String::new(),
        }
    }

    fn args(argv: &[&str]) -> JobsArgs {
        match Cli::parse_from([&["farm", "jobs"][..], argv].concat()).command {
            Command::Jobs(args) => args,
            _ => unreachable!(),
        }
    }

    #[test]
    fn jobs_are_filtered_newest_first_and_limited() {
        let all: Vec<JobStatus> = (1..=60)
            .map(|i| {
                let state = if i % 2 == 0 { JobState::Failed } else { JobState::Succeeded };
                job(i, if i % 3 == 0 { "pi" } else { "primes" }, state)
            })
            .collect();
        let (shown, left) = select(all.clone(), &args(&[]));
        assert_eq!((shown.len(), left), (50, 10));
        assert_eq!(shown[0].job, 60);
        let (shown, left) = select(all.clone(), &args(&["--state", "failed", "--kind", "pi"]));
        assert_eq!(left, 0);
        assert!(shown.iter().all(|j| j.job % 6 == 0), "{shown:?}");
        assert_eq!(shown.len(), 10);
        let (shown, _) = select(all.clone(), &args(&["--limit", "0"]));
        assert_eq!(shown.len(), 60);
        let (shown, left) = select(all, &args(&["--limit", "3", "--state", "ended"]));
        assert_eq!((shown.iter().map(|j| j.job).collect::<Vec<_>>(), left), (vec![60, 59, 58], 57));
        assert!(StateFilter::Active.admits(JobState::Queued));
    }

    #[test]
    fn completions_and_the_man_page_render() {
        let mut script = Vec::new();
        clap_complete::generate(
            clap_complete::Shell::Bash,
            &mut Cli::command(),
            "farm",
            &mut script,
        );
        let script = String::from_utf8(script).expect("utf-8");
        assert!(script.contains("submit") && script.contains("--shard-timeout"));
        let page = String::from_utf8(man_pages().expect("renders")).expect("utf-8");
        assert!(page.contains(".TH farm"));
        // Every command has its page, with its own flags.
        for command in Cli::command().get_subcommands() {
            let title = format!(".TH farm-{} ", command.get_name());
            assert!(page.contains(&title), "{title} missing");
        }
        assert!(page.contains(".TH farm-alloc-add ") && page.contains("shard\\-size"));
    }
}
