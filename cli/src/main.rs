//! `farm`: one binary for every role. `farm master` serves, `farm worker` runs shards,
//! `farm run` does both for one job on this machine, and the other commands are clients.
//!
//! # Files
//!
//! One entry per source file under `src/` (a test in `tests/tests/docs.rs` fails when one
//! is missing or names a file that is gone):
//!
//! - `access.rs`: `farm token new` (a principal's token and file entry) and `farm audit`
//! - `alloc.rs`: `farm alloc`: add, list and remove allocation queues (Slurm)
//! - `args.rs`: the command line: clap structs only
//! - `args/alloc.rs`: the flags of `farm alloc` as clap structs
//! - `args/client.rs`: the connection flags (`--master`, `--token`, `--tls-*`) as clap structs
//! - `args/duration.rs`: durations on the command line, with their unit: the worker SDK's parser
//! - `args/lists.rs`: the flags of the listing commands (`farm jobs`, `farm kinds`) and `farm
//!   completions`
//! - `args/serve.rs`: the flags of the commands that serve: `farm master`, `farm run`
//! - `commands.rs`: client commands: submit, watch, status, cancel, jobs, workers
//! - `config.rs`: the config file: any flag, by its long name, as a default under env and the
//!   command line
//! - `conn.rs`: merging connection flags given before the command, refused where they would be
//!   ignored
//! - `deliver.rs`: what a command that waited for a job delivers once it ended
//! - `fail.rs`: how a command that failed says so: one line on stderr, or one JSON object with
//!   `--json`
//! - `http.rs`: the master's HTTP endpoint as the command line sets it up: `--http ADDR|off`
//! - `job.rs`: turns the job flags into a checked job spec
//! - `kinds.rs`: `farm kinds`: what the cluster offers, read from the master
//! - `logging.rs`: logs on stderr: plain text (colour only on a terminal) or JSON lines
//! - `logs.rs`: `farm logs JOB`: a job's per-shard logs, streamed from the master (`Logs`)
//! - `out.rs`: standard output for every command: a closed pipe is a quiet exit; `escaped` for text
//! - `results.rs`: `farm results JOB`, and `--out FILE` of `farm submit --wait` and `farm run`
//! - `roles.rs`: the long-running roles: `farm master`, `farm worker`, and `farm run`
//! - `show.rs`: what people and scripts see: progress bars, results, tables, the mandelbrot PNG
//! - `showdown/chart.rs`: what people see: the table, the notes under it, and the SVG chart
//! - `showdown/mod.rs`: `farm showdown`: the classic "threading vs multiprocessing" comparison
//! - `showdown/python.rs`: the Python panel: its rows, each count checked against farm's own
//!   test, and what it found
//! - `showdown/run.rs`: running the configurations: `farm run` children and the embedded Python
//!   script
//! - `showdown/tests.rs`: tests of the pure parts: the math, the table, the chart
//! - `submit.rs`: the steps `farm submit --wait` and `farm run` share: the `--out` check, the
//!   submit, the joblog and the delivery
//! - `tables.rs`: every table the CLI prints (jobs, workers, kinds' params, the showdown)
//! - `wasm_args.rs`: the master's wasm module store flags (`--max-module-mib`,
//!   `--module-store-mib`)

// Every stdout write goes through `out`, which stops quietly when the reader has gone.
#![deny(clippy::print_stdout)]

mod access;
mod alloc;
mod args;
mod commands;
mod config;
mod conn;
mod deliver;
mod fail;
mod http;
mod job;
mod kinds;
mod logging;
mod logs;
mod out;
mod results;
mod roles;
mod show;
mod showdown;
mod submit;
mod tables;
mod wasm_args;

use anyhow::Result;
use args::{Cli, Command};
use clap::{ArgMatches, CommandFactory, FromArgMatches};
use std::ffi::OsString;
use std::process::ExitCode;

/// Parses the command line over the config file's defaults.
fn parse(argv: &[OsString]) -> Result<(Cli, ArgMatches)> {
    let mut cmd = Cli::command();
    if let Some((_, config)) = config::load(argv)? {
        cmd = config::apply(cmd, &config)?;
    }
    let matches = cmd.try_get_matches_from(argv)?;
    let cli = Cli::from_arg_matches(&matches)?;
    Ok((cli, matches))
}

/// The matches of the command itself (`farm jobs …`), below the root's.
fn command_matches(m: &ArgMatches) -> &ArgMatches {
    m.subcommand().map_or(m, |(_, sub)| sub)
}

fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let json = fail::wants_json(&argv);
    let (cli, matches) = match parse(&argv) {
        Ok(parsed) => parsed,
        Err(e) => match e.downcast::<clap::Error>() {
            // --help and --version, and clap's own usage errors without --json.
            Ok(clap) if !json || !clap.use_stderr() => clap.exit(),
            Ok(clap) => {
                // clap's first line, without its "error: " and the usage after it.
                let text = clap.to_string();
                let line = text.lines().next().unwrap_or_default();
                let e = fail::Usage(line.trim_start_matches("error: ").to_string());
                fail::report(&e.into(), true);
                return ExitCode::from(2);
            }
            Err(e) => {
                fail::report(&e, json);
                return ExitCode::from(2);
            }
        },
    };
    let default_log = match cli.command {
        Command::Master(_) | Command::Worker(_) => "info",
        _ => "warn",
    };
    let log = logging::Setup {
        filter: logging::base(cli.log_level.as_deref(), default_log),
        level: cli.log_level.clone(),
        format: cli.log_format,
    };
    logging::init(log.format, &log.filter, default_log);
    if matches!(cli.command, Command::Master(_) | Command::Run(_)) {
        // Before the runtime's threads allocate: bounded arenas keep the master's memory
        // close to what it holds (see farm_master::arenas).
        farm_master::arenas::limit_arenas();
    }
    let result = run(cli, command_matches(&matches), &log);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of our stdout has gone (`farm … | head`): stop quietly, as `cat` would.
        Err(e) if out::is_closed(&e) => ExitCode::SUCCESS,
        Err(e) if fail::is_interrupted(&e) => {
            fail::report(&e, json);
            ExitCode::from(fail::INTERRUPTED_EXIT)
        }
        Err(e) => {
            fail::report(&e, json);
            ExitCode::FAILURE
        }
    }
}

/// Runs the command on a runtime of its own.
fn run(cli: Cli, m: &ArgMatches, log: &logging::Setup) -> Result<()> {
    conn::check_before(&cli.before, &cli.command)?;
    let runtime = match cli.command {
        // A worker's runtime only moves messages: one thread (see `farm_worker::cli::runtime`).
        Command::Worker(_) => farm_worker::cli::runtime(),
        _ => tokio::runtime::Builder::new_multi_thread().enable_all().build(),
    }
    .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))?;
    let before = cli.before;
    let result = runtime.block_on(async move {
        let target = |client| conn::target(client, &before, m);
        match cli.command {
            Command::Run(args) => roles::run(args, log).await,
            Command::Master(mut args) => {
                args.auth = conn::auth(args.auth, &before, m);
                let me = conn::Target::new(String::new(), &args.auth)?;
                roles::master(args, &me, log).await
            }
            Command::Worker(mut w) => {
                conn::worker(&mut w, &before, m);
                roles::worker(*w).await
            }
            Command::Submit(args) => commands::submit(&target(args.client.clone())?, args).await,
            Command::Watch(args) => commands::watch(&target(args.job.client.clone())?, args).await,
            Command::Status(args) => commands::status(&target(args.client.clone())?, args).await,
            Command::Results(args) => results::results(&target(args.client.clone())?, args).await,
            Command::Logs(args) => logs::logs(&target(args.client.clone())?, args).await,
            Command::Cancel(args) => commands::cancel(&target(args.client.clone())?, args).await,
            Command::Jobs(args) => commands::jobs(&target(args.client.clone())?, args).await,
            Command::Workers(args) => commands::workers(&target(args.client.clone())?, args).await,
            Command::Kinds(args) => kinds::kinds(&target(args.client.clone())?, args).await,
            Command::Alloc(args) => alloc::alloc(&target(args.client.clone())?, args).await,
            Command::Token(args) => access::token(args),
            Command::Audit(args) => access::audit(&target(args.client.clone())?, args).await,
            Command::Showdown(args) => showdown::showdown(args).await,
            Command::Completions(args) => commands::completions(args),
            Command::Man => commands::man(),
        }
    });
    // Do not wait for blocked tasks (a stdin read, a stuck stream) on the way out.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    result
}
