//! `farm`: one binary for every role. `farm master` serves, `farm worker` runs shards,
//! `farm run` does both for one job on this machine, and the other commands are clients.

mod args;
mod commands;
mod http;
mod job;
mod kinds;
mod results;
mod roles;
mod show;
mod showdown;

use args::{Cli, Command};
use clap::Parser;
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_log = match cli.command {
        Command::Master(_) | Command::Worker(_) => "info",
        _ => "warn",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_log));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    if matches!(cli.command, Command::Master(_) | Command::Run(_)) {
        // Before the runtime's threads allocate: bounded arenas keep the master's memory
        // close to what it holds (see farm_master::alloc).
        farm_master::alloc::limit_arenas();
    }

    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let token = match farm_net::auth::load(cli.token.clone(), cli.token_file.as_deref()) {
        Ok(token) => token,
        Err(e) => {
            eprintln!("error: cannot read --token-file: {e}");
            return ExitCode::FAILURE;
        }
    };
    let identity = cli.tls_cert.clone().zip(cli.tls_key.clone());
    let tls = match &cli.tls_ca {
        Some(ca) => {
            let id = identity.as_ref().map(|(c, k)| (c.as_path(), k.as_path()));
            match farm_net::tls::client(ca, id) {
                Ok(tls) => Some(tls),
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        None => None,
    };
    let master =
        commands::Target { url: cli.master.clone(), token, tls, identity, ca: cli.tls_ca.clone() };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Run(args) => roles::run(args).await,
            Command::Master(args) => roles::master(args, &master).await,
            Command::Worker(args) => roles::worker(&master, args).await,
            Command::Submit(args) => commands::submit(&master, args).await,
            Command::Watch(args) => commands::watch(&master, args).await,
            Command::Status(args) => commands::status(&master, args).await,
            Command::Results(args) => results::results(&master, args).await,
            Command::Cancel(args) => commands::cancel(&master, args).await,
            Command::Jobs(args) => commands::jobs(&master, args).await,
            Command::Workers(args) => commands::workers(&master, args).await,
            Command::Kinds(args) => kinds::kinds(&master, args).await,
            Command::Showdown(args) => showdown::showdown(args).await,
        }
    });
    // Do not wait for blocked tasks (a stdin read, a stuck stream) on the way out.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
