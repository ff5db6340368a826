//! The principals file (`--principals FILE`): reading it safely, parsing its `[defaults]` and
//! `[[principal]]` tables, checking names, and the entry `farm token new` prints.

use super::{hash, hex, Limits, Principal, Role};
use serde::Deserialize;
use std::path::Path;

/// The principals file's largest accepted size.
const FILE_BYTES: u64 = 1 << 20;

/// A parsed principals file.
#[derive(Debug, Clone, Default)]
pub struct PrincipalsFile {
    /// Its principals, defaults applied.
    pub principals: Vec<Principal>,
}

/// A principals file as written: `[defaults]` and `[[principal]]` tables.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileText {
    #[serde(default)]
    defaults: Entry,
    #[serde(default)]
    principal: Vec<Entry>,
}

/// One `[[principal]]` (or the `[defaults]`: quotas and weight only).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: Option<String>,
    token_sha256: Option<String>,
    roles: Option<Vec<Role>>,
    weight: Option<u32>,
    jobs: Option<u64>,
    shards_in_flight: Option<u64>,
    input_mib: Option<u64>,
    module_mib: Option<u64>,
}

impl PrincipalsFile {
    /// Reads `path`: refused if it is not a regular file, if group or others may read or write
    /// it (it names who may do what; chmod 600), or if it is larger than 1 MiB.
    pub fn read(path: &Path) -> Result<PrincipalsFile, String> {
        use std::io::Read;
        use std::os::unix::fs::PermissionsExt;
        let at = path.display();
        let file = std::fs::File::open(path).map_err(|e| format!("principals file {at}: {e}"))?;
        let meta = file.metadata().map_err(|e| format!("principals file {at}: {e}"))?;
        if !meta.is_file() {
            return Err(format!("principals file {at} is not a regular file"));
        }
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(format!(
                "principals file {at} has mode {mode:03o}: others may read it; it must be \
                 readable by its owner only (chmod 600 {at})"
            ));
        }
        let mut text = String::new();
        file.take(FILE_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|e| format!("principals file {at}: {e}"))?;
        if text.len() as u64 > FILE_BYTES {
            return Err(format!("principals file {at} is larger than 1 MiB"));
        }
        PrincipalsFile::parse(&text).map_err(|e| format!("principals file {at}: {e}"))
    }

    /// Parses a principals file's text.
    pub fn parse(text: &str) -> Result<PrincipalsFile, String> {
        let file: FileText = toml::from_str(text).map_err(|e| e.message().to_string())?;
        let d = file.defaults;
        if d.name.is_some() || d.token_sha256.is_some() || d.roles.is_some() {
            return Err("[defaults] holds quotas and weight only".into());
        }
        let mut principals = Vec::with_capacity(file.principal.len());
        for e in file.principal {
            let name = e.name.ok_or("a [[principal]] has no name")?;
            check_name(&name)?;
            let digest =
                e.token_sha256.ok_or_else(|| format!("principal {name}: no token_sha256"))?;
            let token_sha256 = parse_hex(&digest).ok_or_else(|| {
                format!("principal {name}: token_sha256 must be 64 hex digits (farm token new)")
            })?;
            let roles = e.roles.filter(|r| !r.is_empty());
            let roles = roles.ok_or_else(|| format!("principal {name}: no roles"))?;
            let weight = e.weight.or(d.weight).unwrap_or(1);
            if weight == 0 {
                return Err(format!("principal {name}: weight must be at least 1"));
            }
            let mib = |v: Option<u64>| v.map(|m| m.saturating_mul(1 << 20));
            let limits = Limits {
                jobs: e.jobs.or(d.jobs),
                shards_in_flight: e.shards_in_flight.or(d.shards_in_flight),
                input_bytes: mib(e.input_mib.or(d.input_mib)),
                module_bytes: mib(e.module_mib.or(d.module_mib)),
            };
            let mut p = Principal::new(&name, roles, Some(token_sha256));
            p.weight = weight;
            p.limits = limits;
            principals.push(p);
        }
        Ok(PrincipalsFile { principals })
    }
}

/// A principal's name: 1 to 64 of letters, digits, `.`, `_` and `-`.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "principal name {}: 1 to 64 letters, digits, '.', '_' or '-'",
            farm_proto::kernel::quote(name)
        ))
    }
}

fn parse_hex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// The `[[principal]]` entry for `name` with `token` and `roles`, as `farm token new` prints it.
pub fn entry(name: &str, token: &str, roles: &[Role]) -> String {
    let roles: Vec<String> = roles.iter().map(|r| format!("\"{r}\"")).collect();
    format!(
        "[[principal]]\nname = \"{name}\"\ntoken_sha256 = \"{}\"\nroles = [{}]\n",
        hex(&hash(token)),
        roles.join(", ")
    )
}
