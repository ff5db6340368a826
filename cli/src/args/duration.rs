//! Durations on the command line, with their unit: the worker SDK's parser, so `farm worker`,
//! an SDK worker and every other command read them alike.

pub use farm_worker::cli::parse_duration;
