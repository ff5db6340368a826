//! The connection flags: where a client or worker finds its master and what it presents, and
//! the same flags as given before the command.

use clap::Args;
use std::path::PathBuf;

/// The connection flags as given before the command (`farm --master URL jobs`), kept for
/// scripts written that way. They have no environment fallback here (the command's own flags
/// have it), and `run`, `showdown` and `master` (for --master) refuse them.
#[derive(Debug, Args)]
pub struct BeforeArgs {
    /// The master, as the command's own --master.
    #[arg(long = "master", id = "before_master", value_name = "URL")]
    pub master: Option<String>,
    /// The shared token, as the command's own --token.
    #[arg(long = "token", id = "before_token", value_name = "TOKEN")]
    pub token: Option<String>,
    /// The token file, as the command's own --token-file.
    #[arg(long = "token-file", id = "before_token_file", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// The CA file, as the command's own --tls-ca.
    #[arg(long = "tls-ca", id = "before_tls_ca", value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// The certificate, as the command's own --tls-cert.
    #[arg(long = "tls-cert", id = "before_tls_cert", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's key, as the command's own --tls-key.
    #[arg(long = "tls-key", id = "before_tls_key", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
}

/// Credentials and TLS: what a client or worker presents, and what a master requires and
/// serves with.
#[derive(Debug, Clone, Args)]
pub struct AuthArgs {
    /// Shared token: clients present it to the master, workers to their master (or require it
    /// from masters that dial them), and `farm master` requires it from clients.
    #[arg(long, global = true, env = "FARM_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// Read the token from this file instead.
    #[arg(long, global = true, value_name = "FILE", env = "FARM_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,

    /// Use TLS, trusting servers whose certificate this CA signed (PEM): clients and workers
    /// verify their master with it, a master its listening workers and its local workers.
    #[arg(long, global = true, value_name = "FILE", env = "FARM_TLS_CA")]
    pub tls_ca: Option<PathBuf>,

    /// This process's certificate (PEM): the master's (or a listening worker's) server
    /// certificate, or a client certificate for mutual TLS.
    #[arg(long, global = true, value_name = "FILE", env = "FARM_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM).
    #[arg(long, global = true, value_name = "FILE", env = "FARM_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
}

/// Where a client command (or a worker) finds its master, and how it proves who it is.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// The master to talk to (client commands) or to dial (worker).
    #[arg(long, global = true, env = "FARM_MASTER", default_value = "http://127.0.0.1:7070")]
    pub master: String,
    /// The token and TLS files.
    #[command(flatten)]
    pub auth: AuthArgs,
}
