//! Which sbatch arguments a client may choose (`farm alloc add slurm -- ARGS`): the operator
//! allows option names on the master's command line (`--alloc-allow-option`) and may fix
//! arguments of their own (`--alloc-fixed-arg`). A client's arguments are parsed strictly:
//! options only (`--name=value`, `--name value`, `-x value`, `-xvalue`, short forms mapped to
//! their long names), values of a safe character set; an option the operator did not allow is
//! refused naming it. What passes is rewritten as `--name=value`, so sbatch runs exactly what
//! was checked, and a client can never pass a script, `--export` an environment or point
//! `--output` at a path of its choosing unless the operator allowed it.

use super::AllocError;

/// The options a client may set when the operator names none: where and as whom allocations
/// run, and for how long; nothing that names a file, an environment or a program.
pub const DEFAULT_ALLOWED: &[&str] =
    &["partition", "account", "qos", "time", "constraint", "reservation", "gres", "mem"];

/// Longest value of an allowed option.
const MAX_VALUE_BYTES: usize = 256;

/// sbatch's short options and their long names (`man sbatch`).
const SHORT: &[(char, &str)] = &[
    ('A', "account"),
    ('a', "array"),
    ('B', "extra-node-info"),
    ('b', "begin"),
    ('C', "constraint"),
    ('c', "cpus-per-task"),
    ('D', "chdir"),
    ('d', "dependency"),
    ('e', "error"),
    ('F', "nodefile"),
    ('G', "gpus"),
    ('H', "hold"),
    ('i', "input"),
    ('J', "job-name"),
    ('k', "no-kill"),
    ('L', "licenses"),
    ('M', "clusters"),
    ('m', "distribution"),
    ('N', "nodes"),
    ('n', "ntasks"),
    ('O', "overcommit"),
    ('o', "output"),
    ('p', "partition"),
    ('Q', "quiet"),
    ('q', "qos"),
    ('S', "core-spec"),
    ('s', "oversubscribe"),
    ('t', "time"),
    ('V', "version"),
    ('v', "verbose"),
    ('W', "wait"),
    ('w', "nodelist"),
    ('x', "exclude"),
];

/// sbatch options that take no value: anything else given as `--name` takes the next
/// argument as its value.
const FLAGS: &[&str] = &[
    "contiguous",
    "exclusive",
    "hold",
    "ignore-pbs",
    "no-kill",
    "no-requeue",
    "overcommit",
    "oversubscribe",
    "parsable",
    "quiet",
    "reboot",
    "requeue",
    "spread-job",
    "test-only",
    "use-min-nodes",
    "verbose",
    "version",
    "wait",
];

/// The operator's word on sbatch arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SbatchPolicy {
    /// Long option names (without `--`) a client may set.
    pub allowed: Vec<String>,
    /// Arguments every allocation gets, after the client's (so they win), unchecked: the
    /// operator's own.
    pub fixed: Vec<String>,
}

impl Default for SbatchPolicy {
    fn default() -> Self {
        SbatchPolicy {
            allowed: DEFAULT_ALLOWED.iter().map(|s| s.to_string()).collect(),
            fixed: vec![],
        }
    }
}

impl SbatchPolicy {
    /// A policy from the operator's option names (`--partition`, `partition` or `-p` all name
    /// the same option) and fixed arguments; refuses names that are no option names.
    pub fn new(allowed: &[String], fixed: Vec<String>) -> Result<Self, String> {
        let allowed = allowed
            .iter()
            .map(|name| operator_name(name.trim()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("--alloc-allow-option: {e}"))?;
        if let Some(bad) = fixed.iter().find(|a| a.is_empty() || a.contains(['\0', '\n', '\r'])) {
            return Err(format!("--alloc-fixed-arg {bad:?} is empty or holds a line break"));
        }
        Ok(SbatchPolicy { allowed, fixed })
    }

    /// The client's arguments, checked and rewritten as `--name=value` (or `--name` for a
    /// flag); PermissionDenied names an option the operator did not allow, InvalidArgument
    /// says what is malformed.
    pub fn check(&self, args: &[String]) -> Result<Vec<String>, AllocError> {
        let mut out = Vec::with_capacity(args.len());
        let mut rest = args.iter();
        while let Some(arg) = rest.next() {
            let (name, inline) = split(arg)?;
            if !self.allowed.contains(&name) {
                return Err(AllocError::Denied(format!(
                    "sbatch option --{name} is not allowed on this master (it allows: {}; the \
                     operator sets them with --alloc-allow-option)",
                    self.allowed_list()
                )));
            }
            if FLAGS.contains(&name.as_str()) && inline.is_none() {
                out.push(format!("--{name}"));
                continue;
            }
            let value = match inline {
                Some(v) => v,
                None => rest.next().cloned().ok_or_else(|| missing(&name))?,
            };
            check_value(&name, &value)?;
            out.push(format!("--{name}={value}"));
        }
        Ok(out)
    }

    fn allowed_list(&self) -> String {
        if self.allowed.is_empty() {
            return "none".into();
        }
        self.allowed.iter().map(|a| format!("--{a}")).collect::<Vec<_>>().join(", ")
    }
}

fn missing(name: &str) -> AllocError {
    AllocError::Invalid(format!("sbatch option --{name} needs a value"))
}

/// An operator's option name, as its long name.
fn operator_name(name: &str) -> Result<String, String> {
    let long = match name.strip_prefix("--") {
        Some(long) => long.to_string(),
        None => match name.strip_prefix('-').map(|s| s.chars().collect::<Vec<_>>()).as_deref() {
            Some(&[c]) => long_of(c).ok_or(format!("unknown sbatch short option -{c}"))?.into(),
            Some(_) => return Err(format!("{name:?} is not an sbatch option name")),
            None => name.to_string(),
        },
    };
    if is_option_name(&long) {
        Ok(long)
    } else {
        Err(format!("{name:?} is not an sbatch option name (letters, digits and '-')"))
    }
}

fn long_of(short: char) -> Option<&'static str> {
    SHORT.iter().find(|(c, _)| *c == short).map(|(_, long)| *long)
}

fn is_option_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// An argument as an option's long name and its value if given in the same argument.
fn split(arg: &str) -> Result<(String, Option<String>), AllocError> {
    let not_option = || {
        AllocError::Invalid(format!(
            "sbatch argument {} is not an option: give options only, as --name=value, \
             --name value or -x value",
            farm_proto::kernel::quote(arg)
        ))
    };
    if let Some(long) = arg.strip_prefix("--") {
        let (name, value) = match long.split_once('=') {
            Some((name, value)) => (name, Some(value.to_string())),
            None => (long, None),
        };
        if !is_option_name(name) {
            return Err(not_option());
        }
        return Ok((name.to_string(), value));
    }
    let mut chars = arg.strip_prefix('-').ok_or_else(not_option)?.chars();
    let short = chars.next().ok_or_else(not_option)?;
    let name = long_of(short).ok_or_else(|| {
        AllocError::Denied(format!(
            "sbatch option -{} is not allowed on this master",
            quote_char(short)
        ))
    })?;
    let attached: String = chars.collect();
    let value = if attached.is_empty() {
        None
    } else if FLAGS.contains(&name) {
        // Bundled flags (`-Hv`) are refused: one option per argument.
        return Err(not_option());
    } else {
        Some(attached)
    };
    Ok((name.to_string(), value))
}

fn quote_char(c: char) -> String {
    c.escape_default().to_string()
}

/// A value is 1..=256 bytes of letters, digits and `_ . , : = + - @ % / * [ ] & |`, not
/// starting with `-` (it would read as an option): no spaces, quotes, `$`, newlines or other
/// control characters.
fn check_value(name: &str, value: &str) -> Result<(), AllocError> {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_.,:=+-@%/*[]&|".contains(c);
    if value.is_empty()
        || value.len() > MAX_VALUE_BYTES
        || value.starts_with('-')
        || !value.chars().all(safe)
    {
        return Err(AllocError::Invalid(format!(
            "the value {} of sbatch option --{name} must be 1..={MAX_VALUE_BYTES} letters, \
             digits or _ . , : = + - @ % / * [ ] & |, not starting with '-'",
            farm_proto::kernel::quote(value)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn check(a: &[&str]) -> Result<Vec<String>, AllocError> {
        SbatchPolicy::default().check(&args(a))
    }

    fn denied(a: &[&str]) -> String {
        match check(a) {
            Err(AllocError::Denied(m)) => m,
            other => panic!("{a:?} was not denied: {other:?}"),
        }
    }

    fn invalid(a: &[&str]) -> String {
        match check(a) {
            Err(AllocError::Invalid(m)) => m,
            other => panic!("{a:?} was not invalid: {other:?}"),
        }
    }

    #[test]
    fn allowed_options_pass_in_every_form_and_come_out_long() {
        let got = check(&["--partition=short", "--account", "me", "-t", "1:00:00", "-qlow"]);
        let want = ["--partition=short", "--account=me", "--time=1:00:00", "--qos=low"];
        assert_eq!(got, Ok(args(&want)));
        assert_eq!(
            check(&["-p", "a,b", "--gres=gpu:2"]),
            Ok(args(&["--partition=a,b", "--gres=gpu:2"]))
        );
        assert_eq!(check(&[]), Ok(vec![]));
    }

    #[test]
    fn options_not_allowed_are_denied_by_name_in_every_form() {
        let m = denied(&["--export=LD_PRELOAD=/tmp/evil.so"]);
        assert!(m.starts_with("sbatch option --export is not allowed on this master"), "{m}");
        assert!(m.contains("--partition, --account"), "{m}");
        assert!(denied(&["--partition=a", "--output=/tmp/x"]).contains("--output "));
        assert!(denied(&["-o", "/tmp/x"]).contains("--output "), "short forms map to long");
        assert!(denied(&["-e/tmp/x"]).contains("--error "));
        assert!(denied(&["--exp=ALL"]).contains("--exp "), "no abbreviations");
        assert!(denied(&["-X"]).contains("-X "), "unknown short options");
        assert!(denied(&["--wrap", "id"]).contains("--wrap "));
    }

    #[test]
    fn malformed_arguments_are_invalid() {
        assert!(invalid(&["/tmp/my-script.sh"]).contains("is not an option"), "no script");
        assert!(invalid(&["--partition=a", "--", "x"]).contains("is not an option"));
        assert!(invalid(&["-"]).contains("is not an option"));
        assert!(invalid(&["--Partition=a"]).contains("is not an option"));
        assert!(invalid(&["--partition"]).contains("--partition needs a value"));
    }

    #[test]
    fn values_are_of_a_safe_character_set() {
        for bad in ["a b", "a\nb", "$(id)", "a;b", "'a'", "", "-x", "--export=X", "é", "a\tb"] {
            let m = invalid(&["--partition", bad]);
            assert!(m.contains("of sbatch option --partition must be"), "{bad:?}: {m}");
        }
        let long = "a".repeat(MAX_VALUE_BYTES + 1);
        assert!(invalid(&["--account", &long]).contains("--account"));
        assert!(check(&["--constraint=a&b|c[1-2]*2"]).is_ok());
    }

    #[test]
    fn the_operator_decides() {
        let none = SbatchPolicy::new(&[], vec![]).expect("policy");
        assert!(
            matches!(none.check(&args(&["-p", "x"])), Err(AllocError::Denied(m)) if m.contains("allows: none"))
        );
        let wide =
            SbatchPolicy::new(&args(&["--output", "-J", "exclusive"]), vec![]).expect("policy");
        assert_eq!(
            wide.check(&args(&["-o", "/shared/%j.log", "--job-name=x", "--exclusive"])),
            Ok(args(&["--output=/shared/%j.log", "--job-name=x", "--exclusive"]))
        );
        assert!(SbatchPolicy::new(&args(&["-Z"]), vec![]).is_err());
        assert!(SbatchPolicy::new(&args(&["out put"]), vec![]).is_err());
        assert!(SbatchPolicy::new(&[], args(&["a\nb"])).is_err());
    }
}
