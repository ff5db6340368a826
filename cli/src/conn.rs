//! The connection flags: `--master`, `--token(-file)` and `--tls-*` belong to the commands that
//! use them (client commands and `farm worker`; `farm master` takes the token and TLS ones).
//! Given before the command (`farm --master URL jobs`) they still count for those, and the
//! commands that would ignore them (`run`, `showdown`, …, and `--master` for `master`) refuse
//! them instead.

use crate::args::{AuthArgs, BeforeArgs, ClientArgs, Command, WorkerArgs};
use anyhow::{bail, Result};
use clap::parser::ValueSource;
use clap::ArgMatches;
use farm_client::Client;

/// A client connected to `master` with its token and TLS settings.
pub(crate) async fn connect(master: &Target) -> Result<Client> {
    Ok(Client::connect_with(&master.url(), master.token.clone(), master.tls.clone()).await?)
}

/// TLS settings for workers this process starts (local ones, allocated ones): the master's CA
/// and (for mutual TLS) its certificate, as environment variables.
pub(crate) fn local_tls_env(me: &Target) -> Vec<(String, String)> {
    let path = |p: &std::path::Path| {
        std::fs::canonicalize(p).unwrap_or(p.to_path_buf()).display().to_string()
    };
    let mut env = Vec::new();
    // Only a master that serves TLS needs its local workers to speak it.
    if me.identity.is_none() {
        return env;
    }
    if let Some(ca) = &me.ca {
        env.push(("FARM_TLS_CA".to_string(), path(ca)));
    }
    if let Some((cert, key)) = &me.identity {
        env.push(("FARM_TLS_CERT".to_string(), path(cert)));
        env.push(("FARM_TLS_KEY".to_string(), path(key)));
    }
    env
}

/// Where client commands (and workers) go, and what they present: a token, TLS settings.
pub struct Target {
    /// The master's URL.
    pub url: String,
    /// The shared token, if any.
    pub token: Option<String>,
    /// TLS for dialing (--tls-ca, and --tls-cert/--tls-key for mutual TLS).
    pub tls: Option<tonic::transport::ClientTlsConfig>,
    /// The certificate and key files given (a master serves with them).
    pub identity: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// The CA file given.
    pub ca: Option<std::path::PathBuf>,
}

impl Target {
    /// The master's URL with a scheme: https when TLS is on.
    pub fn url(&self) -> String {
        farm_net::tls::dial_url(&self.url, self.tls.is_some())
    }

    /// Reads the token file and the TLS files the flags name.
    pub fn new(url: String, auth: &AuthArgs) -> Result<Target> {
        let token = farm_net::auth::load(auth.token.clone(), auth.token_file.as_deref())
            .map_err(|e| anyhow::anyhow!("cannot read --token-file: {e}"))?;
        let identity = match (&auth.tls_cert, &auth.tls_key) {
            (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
            (None, None) => None,
            (Some(_), None) => bail!("--tls-cert needs --tls-key"),
            (None, Some(_)) => bail!("--tls-key needs --tls-cert"),
        };
        let tls = match &auth.tls_ca {
            Some(ca) => {
                let id = identity.as_ref().map(|(c, k)| (c.as_path(), k.as_path()));
                Some(farm_net::tls::client(ca, id)?)
            }
            None => None,
        };
        Ok(Target { url, token, tls, identity, ca: auth.tls_ca.clone() })
    }
}

/// The flags given before the command, by long name.
fn before_given(b: &BeforeArgs) -> Vec<&'static str> {
    let mut given = Vec::new();
    let flags: [(&'static str, bool); 6] = [
        ("--master", b.master.is_some()),
        ("--token", b.token.is_some()),
        ("--token-file", b.token_file.is_some()),
        ("--tls-ca", b.tls_ca.is_some()),
        ("--tls-cert", b.tls_cert.is_some()),
        ("--tls-key", b.tls_key.is_some()),
    ];
    given.extend(flags.iter().filter(|(_, on)| *on).map(|(name, _)| *name));
    given
}

/// Refuses connection flags given before a command that has no use for them.
pub fn check_before(before: &BeforeArgs, command: &Command) -> Result<()> {
    let (name, allowed): (&str, &[&str]) = match command {
        Command::Run(_) => ("run", &[]),
        Command::Showdown(_) => ("showdown", &[]),
        Command::Completions(_) => ("completions", &[]),
        Command::Man => ("man", &[]),
        Command::Master(_) => {
            ("master", &["--token", "--token-file", "--tls-ca", "--tls-cert", "--tls-key"])
        }
        _ => return Ok(()),
    };
    if let Some(flag) = before_given(before).into_iter().find(|f| !allowed.contains(f)) {
        bail!("`farm {name}` takes no {flag}: it starts its own master and talks to no other");
    }
    Ok(())
}

/// Whether `id` was given on the command line at this level or in a subcommand below it.
fn given(m: &ArgMatches, id: &str) -> bool {
    let here =
        m.try_contains_id(id).is_ok() && m.value_source(id) == Some(ValueSource::CommandLine);
    here || m.subcommand().is_some_and(|(_, sub)| given(sub, id))
}

/// The command's own value when it was given on the command line, else the one given before
/// the command, else the command's (from the environment, the config file or the default).
fn pick<T>(own: T, before: Option<T>, m: &ArgMatches, id: &str) -> T {
    match before {
        Some(before) if !given(m, id) => before,
        _ => own,
    }
}

/// Merges the token and TLS flags given before the command into the command's own.
pub fn auth(own: AuthArgs, before: &BeforeArgs, m: &ArgMatches) -> AuthArgs {
    AuthArgs {
        token: pick(own.token, before.token.clone().map(Some), m, "token"),
        token_file: pick(own.token_file, before.token_file.clone().map(Some), m, "token_file"),
        tls_ca: pick(own.tls_ca, before.tls_ca.clone().map(Some), m, "tls_ca"),
        tls_cert: pick(own.tls_cert, before.tls_cert.clone().map(Some), m, "tls_cert"),
        tls_key: pick(own.tls_key, before.tls_key.clone().map(Some), m, "tls_key"),
    }
}

/// The client's target: its flags merged with those given before the command.
pub fn target(own: ClientArgs, before: &BeforeArgs, m: &ArgMatches) -> Result<Target> {
    let url = pick(own.master, before.master.clone(), m, "master");
    Target::new(url, &auth(own.auth, before, m))
}

/// Merges the connection flags given before `worker` into the worker's own.
pub fn worker(own: &mut WorkerArgs, before: &BeforeArgs, m: &ArgMatches) {
    let own_master = std::mem::take(&mut own.master);
    own.master = pick(own_master, before.master.clone(), m, "master");
    let auth = AuthArgs {
        token: own.token.take(),
        token_file: own.token_file.take(),
        tls_ca: own.tls_ca.take(),
        tls_cert: own.tls_cert.take(),
        tls_key: own.tls_key.take(),
    };
    let auth = self::auth(auth, before, m);
    (own.token, own.token_file, own.tls_ca) = (auth.token, auth.token_file, auth.tls_ca);
    (own.tls_cert, own.tls_key) = (auth.tls_cert, auth.tls_key);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::Cli;
    use clap::{CommandFactory, FromArgMatches};

    fn parse(argv: &[&str]) -> (Cli, ArgMatches) {
        let m = Cli::command().try_get_matches_from(argv).expect("parses");
        (Cli::from_arg_matches(&m).expect("cli"), m)
    }

    fn url_of(argv: &[&str]) -> String {
        let (cli, m) = parse(argv);
        let Command::Jobs(args) = cli.command else { panic!("jobs") };
        let (_, sub) = m.subcommand().expect("sub");
        target(args.client, &cli.before, sub).expect("target").url
    }

    #[test]
    fn the_master_may_come_before_or_after_the_command_and_after_wins() {
        assert_eq!(url_of(&["farm", "--master", "http://a:1", "jobs"]), "http://a:1");
        assert_eq!(url_of(&["farm", "jobs", "--master", "http://b:2"]), "http://b:2");
        assert_eq!(
            url_of(&["farm", "--master", "http://a:1", "jobs", "--master", "http://b:2"]),
            "http://b:2"
        );
    }

    #[test]
    fn run_showdown_and_master_refuse_what_they_would_ignore() {
        for argv in [
            &["farm", "--master", "http://a:1", "run", "noop", "--range", "0..1"][..],
            &["farm", "--token", "t", "showdown"],
            &["farm", "--master", "http://a:1", "master"],
        ] {
            let (cli, _) = parse(argv);
            let err = check_before(&cli.before, &cli.command).expect_err("refused").to_string();
            assert!(err.contains("takes no --"), "{err}");
        }
        let (cli, _) = parse(&["farm", "--token", "t", "master"]);
        assert!(check_before(&cli.before, &cli.command).is_ok());
        // After the command, clap itself refuses them.
        for argv in [
            &["farm", "run", "noop", "--range", "0..1", "--master", "http://a:1"][..],
            &["farm", "showdown", "--token", "t"],
            &["farm", "master", "--master", "http://a:1"],
        ] {
            assert!(Cli::command().try_get_matches_from(argv).is_err(), "{argv:?}");
        }
    }

    #[test]
    fn their_help_leaves_the_connection_flags_out() {
        for name in ["run", "showdown"] {
            let mut cmd = Cli::command();
            let help = cmd.find_subcommand_mut(name).expect("sub").render_long_help().to_string();
            assert!(!help.contains("--master") && !help.contains("--tls-ca"), "{name}: {help}");
        }
        let mut cmd = Cli::command();
        let help = cmd.find_subcommand_mut("master").expect("sub").render_long_help().to_string();
        assert!(!help.contains("--master <") && help.contains("--tls-cert"), "{help}");
    }
}
