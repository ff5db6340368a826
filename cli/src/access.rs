//! `farm token new` (a principal's token and its entry in the principals file) and `farm
//! audit` (the master's audit trail).

use crate::args::{AuditArgs, TokenAction, TokenArgs};
use crate::conn::Target;
use crate::fail::Usage;
use crate::{out, tables};
use anyhow::{Context, Result};
use farm_master::access::{check_name, entry, PrincipalsFile};
use std::io::Write;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// `farm token new NAME --role R [--principals FILE]`.
pub fn token(args: TokenArgs) -> Result<()> {
    let TokenAction::New { name, roles, principals } = args.action;
    check_name(&name).map_err(Usage)?;
    let token = farm_net::auth::new_token();
    let text = entry(&name, &token, &roles);
    let Some(path) = principals else {
        out::line(format_args!(
            "token for {name} (shown once; give it to them, keep it nowhere else):"
        ))?;
        out::line(&token)?;
        out::line(format_args!("\nadd to the master's principals file:\n"))?;
        return out::write(&text);
    };
    append(&path, &name, &text)?;
    eprintln!("added principal {name} to {}; restart the master to use it", path.display());
    out::line(&token)
}

/// Appends `text` to the principals file at `path` (created 0600 if missing), refusing a
/// file others may read, one that does not parse, and a name already in it.
fn append(path: &Path, name: &str, text: &str) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let at = path.display();
    if path.exists() {
        let file = PrincipalsFile::read(path).map_err(Usage)?;
        if file.principals.iter().any(|p| &*p.name == name) {
            return Err(Usage(format!("principal {name} is already in {at}")).into());
        }
    }
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot open {at}"))?;
    let lead = if file.metadata().map(|m| m.len()).unwrap_or(0) > 0 { "\n" } else { "" };
    file.write_all(format!("{lead}{text}").as_bytes()).with_context(|| format!("cannot write {at}"))
}

/// `farm audit [--since 1h]`.
pub async fn audit(master: &Target, args: AuditArgs) -> Result<()> {
    let now = SystemTime::now();
    let since = match args.since {
        Some(d) => now
            .checked_sub(d)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |t| t.as_millis() as u64),
        None => 0,
    };
    let entries = crate::conn::connect(master).await?.audit(since).await?;
    if args.output.json {
        let rows: Vec<serde_json::Value> = entries
            .iter()
            .map(|e| {
                serde_json::json!({
                    "unix_ms": e.unix_ms, "principal": e.principal, "action": e.action,
                    "target": e.target, "outcome": e.outcome, "reason": e.reason,
                })
            })
            .collect();
        return out::json(&rows);
    }
    let mut table = tables::new(&["WHEN", "PRINCIPAL", "ACTION", "TARGET", "OUTCOME", "REASON"]);
    for e in &entries {
        let cells = vec![
            tables::ago(e.unix_ms, now),
            e.principal.clone(),
            e.action.clone(),
            e.target.clone(),
            e.outcome.clone(),
            tables::clip(&e.reason, 100),
        ];
        tables::add_row(&mut table, cells);
    }
    out::write(&tables::render(table, &[]))
}
