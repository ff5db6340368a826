//! Tests of the pure parts: the math, the table, the chart.
use super::*;

fn row(
    kernel: &str,
    mode: &str,
    p: usize,
    t: usize,
    wall_s: f64,
    serial: f64,
    ideal: Ideal,
) -> Row {
    let s = speedup(serial, wall_s);
    Row {
        kernel: kernel.into(),
        mode: mode.into(),
        workers: p,
        threads: t,
        items: 1000,
        wall_s,
        elapsed_ms: Some((wall_s * 900.0) as u64),
        result: json!(78498),
        speedup: s,
        ideal_speedup: ideal_speedup(ideal, p * t, 100),
        efficiency: efficiency(ideal, p * t, 100, s, wall_s),
    }
}

fn sample() -> Vec<Row> {
    let cpu = Ideal::Cpu { cores: 2 };
    let wait = Ideal::Wait { total_s: 4.0 };
    vec![
        row("primes", "serial", 1, 1, 4.0, 4.0, cpu),
        row("primes", "threads", 1, 2, 2.0, 4.0, cpu),
        row("primes", "processes", 2, 1, 2.5, 4.0, cpu),
        row("primes", "composed", 2, 2, 2.1, 4.0, cpu),
        row("sleep", "serial", 1, 1, 4.2, 4.2, wait),
        row("sleep", "composed wide", 2, 8, 0.5, 4.2, wait),
        Row {
            elapsed_ms: None,
            ..row("primes (python)", "ThreadPoolExecutor", 1, 2, 1.0, 0.9, cpu)
        },
    ]
}

#[test]
fn speedup_and_efficiency() {
    let cpu = Ideal::Cpu { cores: 2 };
    assert_eq!(speedup(4.0, 2.0), 2.0);
    assert_eq!(speedup(4.0, 0.0), 0.0);
    // CPU work: the ideal is min(P·T, cores, shards).
    assert_eq!(ideal_speedup(cpu, 1, 100), 1.0);
    assert_eq!(ideal_speedup(cpu, 4, 100), 2.0);
    assert_eq!(ideal_speedup(Ideal::Cpu { cores: 8 }, 4, 3), 3.0);
    assert!((efficiency(cpu, 4, 100, 1.9, 1.0) - 0.95).abs() < 1e-12);
    assert!((efficiency(cpu, 1, 100, 1.0, 1.0) - 1.0).abs() < 1e-12);
    // Waiting work: ideal wall = total wait / P·T; 4 s of waits on 16 slots ideally 0.25 s.
    let wait = Ideal::Wait { total_s: 4.0 };
    assert_eq!(ideal_speedup(wait, 16, 200), 16.0);
    assert!((efficiency(wait, 16, 200, 8.0, 0.5) - 0.5).abs() < 1e-12);
    assert!((efficiency(wait, 1, 200, 1.0, 4.0) - 1.0).abs() < 1e-12);
    // Fewer shards than slots: the shards bound the parallelism.
    assert!((efficiency(wait, 16, 4, 4.0, 1.0) - 1.0).abs() < 1e-12);
    assert_eq!(efficiency(wait, 16, 4, 4.0, 0.0), 0.0);
}

#[test]
fn shapes_add_a_wide_run_for_waiting_work() {
    let cpu = shapes(2, false);
    let modes: Vec<_> = cpu.iter().map(|s| (s.mode, s.workers, s.threads)).collect();
    assert_eq!(
        modes,
        [("serial", 1, 1), ("threads", 1, 2), ("processes", 2, 1), ("composed", 2, 2)]
    );
    let wait = shapes(2, true);
    assert_eq!(wait.last(), Some(&Shape::new("composed wide", 2, 8)));
}

#[test]
fn rows_use_the_first_run_as_baseline_and_results_must_agree() {
    let m = |mode, p, t, wall_s, result: u64| Measured {
        shape: Shape::new(mode, p, t),
        wall_s,
        elapsed_ms: Some(1),
        result: json!(result),
    };
    let rows = rows_for(
        "primes",
        1000,
        10,
        Ideal::Cpu { cores: 2 },
        vec![m("serial", 1, 1, 3.0, 168), m("threads", 1, 2, 1.5, 168)],
    )
    .expect("rows");
    assert_eq!(rows[0].speedup, 1.0);
    assert_eq!(rows[1].speedup, 2.0);
    assert_eq!(rows[1].efficiency, 1.0);
    let err = rows_for(
        "primes",
        1000,
        10,
        Ideal::Cpu { cores: 2 },
        vec![m("serial", 1, 1, 3.0, 168), m("processes", 2, 1, 1.5, 167)],
    )
    .expect_err("mismatch");
    assert!(err.to_string().contains("results disagree"), "{err}");
}

#[test]
fn the_table_has_a_header_and_one_aligned_line_per_row() {
    let rows = sample();
    let text = table(&rows);
    let lines: Vec<_> = text.lines().collect();
    assert_eq!(lines.len(), rows.len() + 1);
    assert!(lines[0].starts_with("KERNEL"));
    assert!(lines.iter().all(|l| l.len() == lines[0].len()), "{text}");
    assert!(lines[2].contains("1 x 2") && lines[2].contains("2.00") && lines[2].contains("100%"));
    assert!(lines[7].contains("primes (python)") && lines[7].contains(" - "), "{text}");
    assert_eq!(human_rate(2_500_000.0), "2.50M");
    assert_eq!(human_rate(400.0), "400");
}

#[test]
fn the_svg_is_standalone_with_one_bar_per_row() {
    let rows = sample();
    let svg = svg(&rows, "farm showdown <2 cores> & more", "sub", &[]);
    assert!(svg.starts_with("<svg"));
    assert!(svg.contains("xmlns=\"http://www.w3.org/2000/svg\""));
    assert_eq!(svg.matches("<svg").count(), 1);
    assert_eq!(svg.matches("</svg>").count(), 1);
    assert!(svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<rect class=\"bar\"").count(), rows.len());
    assert_eq!(svg.matches("class=\"ideal\"").count(), rows.len());
    assert!(svg.contains("&lt;2 cores&gt; &amp; more"));
    assert_balanced(&svg);
}

#[test]
fn each_kernel_has_a_panel_with_its_own_scale() {
    let rows = sample();
    let svg = svg(&rows, "t", "s", &[]);
    assert_eq!(svg.matches("class=\"panel\"").count(), 3, "one panel per kernel");
    // The widest bar of each panel reaches most of the axis, whatever the other panels hold:
    // sleep's 8.4x does not squash primes' 2x.
    let widths = |kernel: &str| -> Vec<f64> {
        svg.lines()
            .filter(|l| {
                l.starts_with("<rect class=\"bar\"") && l.contains(&format!("<title>{kernel} "))
            })
            .map(|l| {
                let w = l.split("width=\"").nth(1).and_then(|r| r.split('"').next());
                w.and_then(|w| w.parse().ok()).expect("width")
            })
            .collect()
    };
    let axis = 780.0 - 250.0;
    for kernel in ["primes", "sleep"] {
        let widest = widths(kernel).into_iter().fold(0.0, f64::max);
        assert!(widest > axis * 0.5, "{kernel}: widest bar {widest} of {axis}");
    }
}

#[test]
fn a_busy_machine_is_named_before_the_runs() {
    assert_eq!(busy("0.40 0.30 0.20 1/200 123\n", 2), None);
    let warning = busy("3.10 1.00 0.50 2/300 999\n", 2).expect("busy");
    assert!(warning.contains("3.10") && warning.contains("2 cores"), "{warning}");
    assert_eq!(busy("garbage", 2), None);
}

/// Every element is closed, in order; no stray `<` or `&` in text.
fn assert_balanced(xml: &str) {
    let mut stack: Vec<&str> = Vec::new();
    let mut rest = xml;
    while let Some(open) = rest.find('<') {
        let text = &rest[..open];
        assert!(!text.contains('>'), "stray > in {text:?}");
        for (i, _) in text.match_indices('&') {
            let entity = &text[i..];
            assert!(
                ["&amp;", "&lt;", "&gt;", "&quot;"].iter().any(|e| entity.starts_with(e)),
                "bare & in {text:?}"
            );
        }
        let close = rest[open..].find('>').expect("tag closes") + open;
        let tag = &rest[open + 1..close];
        let name = tag.trim_start_matches('/').split_whitespace().next().unwrap_or("");
        if tag.starts_with('/') {
            assert_eq!(stack.pop(), Some(name), "closing {name}");
        } else if !tag.ends_with('/') {
            stack.push(name);
        }
        rest = &rest[close + 1..];
    }
    assert!(stack.is_empty(), "unclosed {stack:?}");
}

#[test]
fn bad_flags_fail_before_anything_runs() {
    use crate::args::{Cli, Command};
    use clap::Parser;
    let parse = |extra: &[&str]| {
        let mut argv = vec!["farm", "showdown"];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv).expect("parses").command {
            Command::Showdown(args) => plan(&args),
            _ => unreachable!("showdown"),
        }
    };
    let p = parse(&["--cores", "3"]).expect("defaults");
    assert_eq!((p.cores, p.primes, p.shard_size), (3, (0, 8_000_000), 100_000));
    assert_eq!((p.sleep, p.sleep_ms, p.python), ((0, 200), 20, Some((0, 400_000))));
    assert!(parse(&["--no-python"]).expect("no python").python.is_none());
    assert_eq!(p.interpreter, Python { program: "python3".into(), explicit: false });
    let named = parse(&["--python", "/opt/py/bin/python"]).expect("--python");
    assert_eq!(named.interpreter, Python { program: "/opt/py/bin/python".into(), explicit: true });
    let err = |extra: &[&str]| parse(extra).expect_err("bad").to_string();
    assert_eq!(err(&["--cores", "0"]), "--cores must be at least 1");
    assert!(err(&["--range", "1..x"]).starts_with("bad --range \"1..x\""));
    assert!(err(&["--range", "5..5"]).contains("empty"));
    assert!(err(&["--python-range", "x"]).starts_with("bad --python-range"));
    assert!(err(&["--shard-size", "0"]).contains("--shard-size"));
    assert!(err(&["--sleep-ms", "0"]).contains("--sleep-ms"));
}

#[test]
fn farm_runs_are_real_run_commands() {
    let run = FarmRun { kind: "sleep", range: (0, 200), shard_size: 1 };
    let args = run.args(&Shape::new("composed", 2, 8), &["ms=20".into()]);
    assert_eq!(
        args.join(" "),
        "run sleep --range 0..200 --shard-size 1 --workers 2 --threads 8 --json --param ms=20"
    );
    assert_eq!(
        last_json_line("noise\n{\"state\":\"succeeded\"}\n"),
        Some(json!({"state": "succeeded"}))
    );
    assert_eq!(last_json_line("no json"), None);
}

/// The script's JSON line with the three pools, and `farm` as given.
fn script_out(farm: Value) -> Value {
    let mut out = json!({
        "version": "3.11.7",
        "gil": true,
        "serial": {"result": 168, "wall_s": 2.0},
        "threads": {"result": 168, "wall_s": 2.1},
        "processes": {"result": 168, "wall_s": 1.1},
    });
    if let (Some(out), Some(farm)) = (out.as_object_mut(), farm.as_object()) {
        out.extend(farm.clone());
    }
    out
}

fn modes(panel: &PythonPanel) -> Vec<(&str, usize, usize)> {
    panel.measured.iter().map(|m| (m.shape.mode, m.shape.workers, m.shape.threads)).collect()
}

#[test]
fn the_python_panel_without_the_farm_package_says_why() {
    let out = script_out(json!({"farm_missing": "ModuleNotFoundError: No module named 'farm'"}));
    let panel = python_panel(&out, 2).expect("panel");
    assert_eq!(
        modes(&panel),
        [("serial", 1, 1), ("ThreadPoolExecutor", 1, 2), ("ProcessPoolExecutor", 2, 1)]
    );
    assert_eq!(panel.version, "3.11.7");
    let info = PythonInfo { version: panel.version, farm: panel.farm, failed: panel.failed };
    let missing = info.missing();
    assert_eq!(missing.len(), 1);
    assert!(missing[0].contains("No module named 'farm'") && missing[0].contains("--python"));
    assert_eq!(info.to_json()["available"], false);
    // The reason is in the notes and under the chart, escaped.
    let rows =
        rows_for(PYTHON_KERNEL, 1000, 10, Ideal::Cpu { cores: 2 }, panel.measured).expect("rows");
    let notes = notes(&rows, 2, Some(&info)).join("\n");
    assert!(notes.contains("ProcessPoolExecutor 1.82x"), "{notes}");
    assert!(notes.contains("No module named 'farm'"), "{notes}");
    let svg = svg(&rows, "t", "s", &missing);
    assert_eq!(svg.matches("class=\"missing\"").count(), 1);
    assert!(svg.contains("No module named 'farm'"), "{svg}");
    assert_balanced(&svg);
}

#[test]
fn the_python_panel_with_the_farm_package_has_three_executor_shapes() {
    let out = script_out(json!({
        "farm_version": "0.1.0",
        "farm_threads": {"result": 168, "wall_s": 2.2},
        "farm_processes": {"result": 168, "wall_s": 1.05},
        "farm_composed": {"error": format!("RuntimeError: <b>{}", "x".repeat(400))},
    }));
    let panel = python_panel(&out, 3).expect("panel");
    assert_eq!(
        modes(&panel),
        [
            ("serial", 1, 1),
            ("ThreadPoolExecutor", 1, 3),
            ("ProcessPoolExecutor", 3, 1),
            ("farm.Executor threads", 1, 3),
            ("farm.Executor processes", 3, 1),
        ]
    );
    assert_eq!(panel.farm, Ok("0.1.0".to_string()));
    // The shape that raised is named with its error, clipped to the budget.
    assert_eq!(panel.failed.len(), 1);
    assert!(panel.failed[0].starts_with("farm.Executor composed 3x3: RuntimeError: <b>xxx"));
    assert!(panel.failed[0].chars().count() < 260, "{}", panel.failed[0]);
    let info = PythonInfo { version: panel.version, farm: panel.farm, failed: panel.failed };
    let rows =
        rows_for(PYTHON_KERNEL, 1000, 10, Ideal::Cpu { cores: 3 }, panel.measured).expect("rows");
    let notes = notes(&rows, 3, Some(&info)).join("\n");
    assert!(notes.contains("farm.Executor (farm 0.1.0): 1x3 0.91x, 3x1 1.90x"), "{notes}");
    assert!(notes.contains("farm.Executor composed 3x3: RuntimeError"), "{notes}");
    // One bar per row; the executor rows have their own colours; the failure is escaped.
    let text = table(&rows);
    assert_eq!(text.lines().count(), rows.len() + 1);
    assert!(text.lines().all(|l| l.len() == text.lines().next().map_or(0, str::len)), "{text}");
    let svg = svg(&rows, "t", "s", &info.missing());
    assert_eq!(svg.matches("<rect class=\"bar\"").count(), 5);
    assert!(svg.contains("RuntimeError: &lt;b&gt;xxx") && !svg.contains("<b>"), "{svg}");
    assert_ne!(colour("farm.Executor processes"), colour("ProcessPoolExecutor"));
    assert_balanced(&svg);
}

#[test]
fn a_python_panel_without_a_wall_time_is_an_error() {
    let mut out = script_out(json!({"farm_missing": "no"}));
    out["processes"] = json!({"result": 168});
    let err = python_panel(&out, 2).expect_err("no wall time").to_string();
    assert!(err.contains("no wall time for processes"), "{err}");
    let mut out = script_out(json!({"farm_version": "1", "farm_processes": {"result": 1}}));
    out["farm_threads"] = json!({"result": 168, "wall_s": 1.0});
    let err = python_panel(&out, 2).expect_err("no wall time").to_string();
    assert!(err.contains("farm_processes"), "{err}");
}
