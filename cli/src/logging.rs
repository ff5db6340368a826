//! Logs on stderr: plain text (coloured only on a terminal, never with `NO_COLOR`) or one JSON
//! object a line (`--log-format json`, for log shippers). The filter is `--log-level`, else
//! `RUST_LOG`, else the role's default; the transport crates (h2, hyper, tower, tonic, rustls)
//! stay at `warn` unless the filter names them, so `RUST_LOG=debug` or `--log-level debug` shows
//! farm's own debug lines rather than HTTP/2 frames.

use clap::ValueEnum;
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object a line.
    Json,
}

/// Crates whose debug output is wire-level noise; pinned to `warn` unless named.
const NOISY: &[&str] = &["h2", "hyper", "hyper_util", "tower", "tonic", "rustls", "tokio_util"];

/// The filter directives: `base` plus `NOISY=warn` for every noisy crate `base` does not name.
pub fn directives(base: &str) -> String {
    let named = |krate: &str| {
        base.split(',').any(|d| {
            let target = d.split(['=', '[']).next().unwrap_or("").trim();
            target == krate || target.starts_with(&format!("{krate}::"))
        })
    };
    let mut all = base.trim().to_string();
    for krate in NOISY.iter().filter(|k| !named(k)) {
        if !all.is_empty() {
            all.push(',');
        }
        all.push_str(krate);
        all.push_str("=warn");
    }
    all
}

/// The base filter: `--log-level`, else `RUST_LOG`, else `default`.
pub fn base(level: Option<&str>, default: &str) -> String {
    match level {
        Some(level) => level.to_string(),
        None => std::env::var("RUST_LOG")
            .ok()
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| default.to_string()),
    }
}

/// Whether text logs get colour: only on a terminal, and never with `NO_COLOR` set (non-empty).
pub fn colour(stderr_is_terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// How this process logs, and so how the local workers it spawns should.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The base filter (before the noisy crates are pinned).
    pub filter: String,
    /// `--log-level` as given (flag or `FARM_LOG_LEVEL`), which beats the workers' own RUST_LOG.
    pub level: Option<String>,
    /// Text or JSON.
    pub format: LogFormat,
}

impl Setup {
    /// The environment for local workers, so they log as this process does.
    pub fn env(&self) -> Vec<(String, String)> {
        let format = match self.format {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        };
        let mut env = vec![("FARM_LOG_FORMAT".to_string(), format.to_string())];
        env.extend(self.level.clone().map(|l| ("FARM_LOG_LEVEL".to_string(), l)));
        env
    }
}

/// Installs the subscriber; an unusable filter falls back to `default` with a warning.
pub fn init(format: LogFormat, base: &str, default: &str) {
    let (filter, bad) = match EnvFilter::try_new(directives(base)) {
        Ok(filter) => (filter, None),
        Err(e) => (EnvFilter::new(directives(default)), Some(e)),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder
            .with_ansi(colour(std::io::stderr().is_terminal(), std::env::var_os("NO_COLOR")))
            .init(),
    }
    if let Some(e) = bad {
        tracing::warn!(filter = %base, error = %e, "unusable log filter; using the default");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noisy_crates_stay_at_warn_unless_named() {
        let d = directives("debug");
        assert!(d.starts_with("debug,"), "{d}");
        assert!(d.contains("h2=warn") && d.contains("hyper=warn") && d.contains("tonic=warn"));
        let d = directives("farm=debug,h2=trace");
        assert!(!d.contains("h2=warn"), "{d}");
        assert!(d.contains("hyper=warn"), "{d}");
        assert!(directives("hyper::proto=debug").contains("h2=warn"));
        assert!(!directives("hyper::proto=debug").contains("hyper=warn"));
        assert!(EnvFilter::try_new(directives("info")).is_ok());
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(!colour(false, None));
        assert!(!colour(true, Some("1".into())));
        assert!(colour(true, Some("".into())));
    }

    #[test]
    fn the_flag_beats_rust_log_and_the_default_comes_last() {
        assert_eq!(base(Some("debug"), "warn"), "debug");
    }
}
