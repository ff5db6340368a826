//! The config file: any flag, by its long name, as a default under the environment and the
//! command line (flags override the environment, which overrides the file).
//!
//! The file is `--config FILE` (or `FARM_CONFIG`; an empty value reads none), else
//! `farm.toml` beside the binary, else `$XDG_CONFIG_HOME/farm/farm.toml` (or
//! `~/.config/farm/farm.toml`). Its top-level keys apply to every command that has the flag; a
//! `[command.NAME]` table (`[command.worker]`, `[command.submit]`…) applies to that command
//! only (a table of its own, so that `master = URL` and the `master` command never clash). No flag is special
//! here: each value becomes the flag's default in the clap command before it parses, which is
//! exactly the place below the environment that clap gives defaults.

use anyhow::{bail, Context, Result};
use clap::Command;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A flag's value(s) from the file, by the flag's long name.
type Values = BTreeMap<String, Vec<String>>;

/// What a config file says: flags for every command, and flags for one command.
#[derive(Debug, Default, PartialEq)]
pub struct Config {
    /// Keys at the top level.
    pub global: Values,
    /// `[command.NAME]` tables.
    pub commands: BTreeMap<String, Values>,
}

/// The file `--config`/`FARM_CONFIG` names in `argv`, before clap has parsed anything: `Some`
/// of an empty path means "none".
pub fn named(argv: &[std::ffi::OsString]) -> Option<PathBuf> {
    let mut args = argv.iter().skip(1);
    while let Some(arg) = args.next() {
        let arg = arg.to_string_lossy();
        if arg == "--" {
            break;
        }
        if arg == "--config" {
            return Some(args.next().map(PathBuf::from).unwrap_or_default());
        }
        if let Some(path) = arg.strip_prefix("--config=") {
            return Some(PathBuf::from(path));
        }
    }
    std::env::var_os("FARM_CONFIG").map(PathBuf::from)
}

/// Where to look when no file is named: beside the binary, then the XDG config dir.
fn candidates() -> Vec<PathBuf> {
    let mut all = Vec::new();
    if let Some(dir) = std::env::current_exe().ok().and_then(|e| e.parent().map(Path::to_owned)) {
        all.push(dir.join("farm.toml"));
    }
    let xdg = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
    if let Some(dir) = xdg {
        all.push(dir.join("farm").join("farm.toml"));
    }
    all
}

/// Reads the config file that applies, if any. A named file must exist; a default one may not.
pub fn load(argv: &[std::ffi::OsString]) -> Result<Option<(PathBuf, Config)>> {
    let path = match named(argv) {
        Some(path) if path.as_os_str().is_empty() => return Ok(None),
        Some(path) => path,
        None => match candidates().into_iter().find(|p| p.is_file()) {
            Some(path) => path,
            None => return Ok(None),
        },
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    let config = parse(&text).with_context(|| format!("config file {}", path.display()))?;
    Ok(Some((path, config)))
}

/// Parses the TOML text into flag values.
pub fn parse(text: &str) -> Result<Config> {
    let table: toml::Table = text.parse()?;
    let mut config = Config::default();
    for (key, value) in table {
        match value {
            toml::Value::Table(commands) if key == "command" => {
                for (name, flags) in commands {
                    let toml::Value::Table(flags) = flags else {
                        bail!("command.{name}: expected a table of flags, [command.{name}]");
                    };
                    let mut values = Values::new();
                    for (k, v) in flags {
                        values.insert(k.clone(), strings(&format!("command.{name}.{k}"), v)?);
                    }
                    config.commands.insert(name, values);
                }
            }
            toml::Value::Table(_) => {
                bail!("[{key}]: the only table is [command.NAME], for one command's flags")
            }
            value => {
                let values = strings(&key, value)?;
                config.global.insert(key, values);
            }
        }
    }
    Ok(config)
}

/// A TOML value as the text(s) a flag would take.
fn strings(key: &str, value: toml::Value) -> Result<Vec<String>> {
    Ok(match value {
        toml::Value::String(s) => vec![s],
        toml::Value::Integer(n) => vec![n.to_string()],
        toml::Value::Float(x) => vec![x.to_string()],
        toml::Value::Boolean(b) => vec![b.to_string()],
        toml::Value::Array(items) => {
            items.into_iter().map(|v| one(key, v)).collect::<Result<Vec<_>>>()?
        }
        other => bail!("{key}: {} is not a flag value", other.type_str()),
    })
}

fn one(key: &str, value: toml::Value) -> Result<String> {
    match strings(key, value)?.as_slice() {
        [one] => Ok(one.clone()),
        _ => bail!("{key}: a list may hold only single values"),
    }
}

/// Puts the file's values in as the flags' defaults; a key that names no flag (of any
/// command, or of its `[command]`) is an error, so a typo does not pass silently.
pub fn apply(mut cmd: Command, config: &Config) -> Result<Command> {
    let mut used = std::collections::BTreeSet::new();
    for (name, values) in &config.commands {
        if cmd.find_subcommand(name).is_none() {
            bail!("[command.{name}]: farm has no command {name:?}");
        }
        let mut found = Vec::new();
        cmd = cmd.mut_subcommand(name, |sub| with_defaults(sub, values, &mut found));
        if let Some(key) = values.keys().find(|k| !found.contains(k)) {
            bail!("[command.{name}] {key}: `farm {name}` has no flag --{key}");
        }
    }
    let mut found = Vec::new();
    // The root's own flags that every command takes (--log-format…); not the connection
    // flags given before a command, which the file must not set for `run` and `master`.
    cmd = set(cmd, &config.global, &mut found, |a| a.is_global_set());
    let names: Vec<String> = cmd.get_subcommands().map(|s| s.get_name().to_string()).collect();
    for name in names {
        cmd = cmd.mut_subcommand(&name, |sub| with_defaults(sub, &config.global, &mut found));
    }
    used.extend(found);
    if let Some(key) = config.global.keys().find(|k| !used.contains(*k)) {
        bail!("{key}: no farm command has a flag --{key}");
    }
    Ok(cmd)
}

/// Sets the default of each flag of `cmd` itself that `values` names and `pick` accepts.
fn set(
    mut cmd: Command,
    values: &Values,
    found: &mut Vec<String>,
    pick: impl Fn(&clap::Arg) -> bool,
) -> Command {
    let ids: Vec<(clap::Id, String)> = cmd
        .get_arguments()
        .filter(|a| pick(a))
        .filter_map(|a| Some((a.get_id().clone(), a.get_long()?.to_string())))
        .filter(|(_, long)| values.contains_key(long))
        .collect();
    for (id, long) in ids {
        let defaults = values[&long].clone();
        cmd = cmd.mut_arg(id, |a| a.default_values(defaults).required(false));
        found.push(long);
    }
    cmd
}

/// Sets the default of every flag of `cmd` (and of its subcommands) that `values` names;
/// records the names it found.
fn with_defaults(cmd: Command, values: &Values, found: &mut Vec<String>) -> Command {
    let mut cmd = set(cmd, values, found, |_| true);
    let subs: Vec<String> = cmd.get_subcommands().map(|s| s.get_name().to_string()).collect();
    for name in subs {
        cmd = cmd.mut_subcommand(&name, |sub| with_defaults(sub, values, found));
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn keys_become_flag_values_and_tables_are_per_command() {
        let config = parse(
            "master = \"http://h:1\"\nretries = 2\n[command.worker]\nthreads = 3\n\
             allow-exec = true\n[command.master]\nconnect = [\"a:1\", \"b:2\"]\n",
        )
        .expect("parses");
        assert_eq!(config.global["master"], ["http://h:1"]);
        assert_eq!(config.global["retries"], ["2"]);
        assert_eq!(config.commands["worker"]["allow-exec"], ["true"]);
        assert_eq!(config.commands["master"]["connect"], ["a:1", "b:2"]);
        assert!(apply(crate::args::Cli::command(), &config).is_ok());
    }

    #[test]
    fn file_values_reach_the_parsed_flags_under_the_command_line() {
        use clap::FromArgMatches;
        let config =
            parse("retries = 2\n[command.worker]\nthreads = 3\nallow-exec = true\n").expect("p");
        let parse_with = |argv: &[&str]| {
            let cmd = apply(crate::args::Cli::command(), &config).expect("applies");
            let m = cmd.try_get_matches_from(argv).expect("parses");
            crate::args::Cli::from_arg_matches(&m).expect("cli").command
        };
        let crate::args::Command::Worker(w) = parse_with(&["farm", "worker"]) else { panic!() };
        assert_eq!((w.threads, w.allow_exec), (Some(3), true));
        let argv = ["farm", "submit", "noop", "--range", "0..1"];
        let crate::args::Command::Submit(s) = parse_with(&argv) else { panic!() };
        assert_eq!(s.job.retries, 2);
        let argv = ["farm", "submit", "noop", "--range", "0..1", "--retries", "5"];
        let crate::args::Command::Submit(s) = parse_with(&argv) else { panic!() };
        assert_eq!(s.job.retries, 5, "the flag beats the file");
    }

    #[test]
    fn a_key_that_names_no_flag_is_refused() {
        let typo = parse("retires = 2\n").expect("parses");
        let err = apply(crate::args::Cli::command(), &typo).expect_err("typo").to_string();
        assert!(err.contains("retires"), "{err}");
        let wrong = parse("[command.worker]\nretries = 2\n").expect("parses");
        assert!(apply(crate::args::Cli::command(), &wrong).is_err());
        assert!(parse("[worker]\nthreads = 2\n").is_err());
        let nosuch = parse("[command.nosuch]\nretries = 2\n").expect("parses");
        assert!(apply(crate::args::Cli::command(), &nosuch).is_err());
    }

    #[test]
    fn the_config_flag_is_found_before_parsing() {
        let argv: Vec<std::ffi::OsString> =
            ["farm", "jobs", "--config", "a.toml"].iter().map(Into::into).collect();
        assert_eq!(named(&argv), Some(PathBuf::from("a.toml")));
        let argv: Vec<std::ffi::OsString> =
            ["farm", "--config=", "jobs"].iter().map(Into::into).collect();
        assert_eq!(named(&argv), Some(PathBuf::new()));
    }
}
