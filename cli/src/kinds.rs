//! `farm kinds`: what the cluster offers, read from the master; and what a `farm worker`
//! offers, which the master and its allocation queues count on before any worker connects.

use crate::args::KindsArgs;
use crate::conn::{connect, Target};
use anyhow::Result;
use farm_proto::{KernelDescriptor, KindInfo, ParamKind, ParamSpec};

/// The kernels a `farm worker` offers: the built-in ones (exec only with `--allow-exec`) and
/// wasm. The one list behind the kinds a master knows before its workers connect, the kinds
/// allocation queues start workers for, and what `farm run` checks a job against.
pub fn offered(allow_exec: bool) -> Vec<KernelDescriptor> {
    let mut kinds = farm_worker::Registry::builtin(allow_exec).descriptors();
    kinds.push(farm_proto::wasm::descriptor());
    kinds
}

/// `farm kinds [--json]`.
pub async fn kinds(master: &Target, args: KindsArgs) -> Result<()> {
    let kinds = connect(master).await?.kinds().await?;
    if args.output.json {
        return crate::out::json(&kinds);
    }
    crate::out::write(&render(&kinds))
}

/// The text listing: each kind with its help, workers and params.
fn render(kinds: &[KindInfo]) -> String {
    let mut out = String::new();
    for k in kinds {
        let d = &k.kernel;
        let workers = match k.workers {
            0 => "no connected worker".to_string(),
            1 => "1 worker".to_string(),
            n => format!("{n} workers"),
        };
        out.push_str(&format!("{}  ({workers})\n", crate::out::escaped(&d.kind, false)));
        if !d.help.is_empty() {
            out.push_str(&format!("    {}\n", crate::out::escaped(&d.help, false)));
        }
        match &d.params {
            None => out.push_str("    params: not declared (passed to the kernel unchecked)\n"),
            Some(params) if params.is_empty() => out.push_str("    params: none\n"),
            Some(params) => {
                let mut table = crate::tables::new(&[]);
                for p in params {
                    let left = format!("--param {}={}", p.name, p.kind.type_name());
                    crate::tables::add_row(&mut table, vec![left, p.help.clone(), facts(p)]);
                }
                for line in crate::tables::render(table, &[]).lines() {
                    out.push_str(&format!("    {line}\n"));
                }
            }
        }
        if d.extra_params && d.params.is_some() {
            out.push_str("    --param NAME=VALUE           any other param, passed on unchecked\n");
        }
    }
    out
}

/// `default D, MIN..=MAX`, `required`.
fn facts(p: &ParamSpec) -> String {
    let mut facts = Vec::new();
    if p.required {
        facts.push("required".to_string());
    }
    match &p.kind {
        ParamKind::Uint { default, min, max } => {
            facts.extend(default.map(|d| format!("default {d}")));
            match (*min, *max) {
                (0, u64::MAX) => {}
                (min, u64::MAX) => facts.push(format!("at least {min}")),
                (min, max) => facts.push(format!("{min}..={max}")),
            }
        }
        ParamKind::Float { default, min, max } => {
            facts.extend(default.map(|d| format!("default {d}")));
            if *min > f64::MIN || *max < f64::MAX {
                facts.push(format!("{min}..={max}"));
            }
        }
        ParamKind::Text { default } => {
            facts.extend(default.as_ref().map(|d| format!("default {d:?}")))
        }
    }
    facts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use farm_proto::{KernelDescriptor, OutputShape};

    #[test]
    fn the_listing_shows_params_with_type_default_bounds_and_help() {
        let chain = KernelDescriptor::new("chain", OutputShape::Lines, "iterated hashing")
            .param(ParamSpec::uint("rounds", 1, 1, 10, "rounds per index"))
            .param(ParamSpec::uint("seed", 7, 1, u64::MAX, "first seed"))
            .param(ParamSpec::required_text("cmd", "a command"));
        let kinds = vec![
            KindInfo { kernel: chain, workers: 2 },
            KindInfo { kernel: KernelDescriptor::open("mine"), workers: 0 },
            KindInfo { kernel: farm_proto::wasm::descriptor(), workers: 1 },
        ];
        let text = render(&kinds);
        assert!(text.contains("chain  (2 workers)\n    iterated hashing\n"), "{text}");
        assert!(text.contains("--param rounds=uint"), "{text}");
        assert!(text.contains("rounds per index  default 1, 1..=10"), "{text}");
        assert!(text.contains("first seed        default 7, at least 1"), "{text}");
        assert!(text.contains("a command         required"), "{text}");
        assert!(text.contains("mine  (no connected worker)\n    params: not declared"), "{text}");
        assert!(text.contains("--param module=text"), "{text}");
        assert!(text.contains("any other param, passed on unchecked"), "{text}");
    }
}
