//! What people see: the table, the notes under it, and the SVG chart.

use super::*;

/// The table for people.
pub(super) fn table(rows: &[Row]) -> String {
    let mut out = format!(
        "{:<16} {:<18} {:>9} {:>8} {:>7} {:>8} {:>10} {:>11}\n",
        "KERNEL", "MODE", "P x T", "WALL S", "JOB S", "SPEEDUP", "EFFICIENCY", "ITEMS/S"
    );
    for r in rows {
        let job =
            r.elapsed_ms.map_or_else(|| "-".to_string(), |ms| format!("{:.2}", ms as f64 / 1e3));
        let _ = writeln!(
            out,
            "{:<16} {:<18} {:>9} {:>8.2} {:>7} {:>8.2} {:>9.0}% {:>11}",
            r.kernel,
            r.mode,
            format!("{} x {}", r.workers, r.threads),
            r.wall_s,
            job,
            r.speedup,
            r.efficiency * 100.0,
            human_rate(r.rate()),
        );
    }
    out
}

pub(super) fn human_rate(per_s: f64) -> String {
    if per_s >= 1e6 {
        format!("{:.2}M", per_s / 1e6)
    } else if per_s >= 1e3 {
        format!("{:.1}k", per_s / 1e3)
    } else {
        format!("{per_s:.0}")
    }
}

/// What the table means, in a few lines computed from it.
pub(super) fn notes(rows: &[Row], n: usize, python: Option<&str>) -> Vec<String> {
    let find =
        |kernel: &str, mode: &str| rows.iter().find(|r| r.kernel == kernel && r.mode == mode);
    let mut lines = vec![format!(
        "N = {n}. WALL S is the whole `farm run` (starting and stopping the workers); JOB S is the \
         job alone."
    )];
    if let (Some(c), Some(w)) = (find("sleep", "composed"), find("sleep", "composed wide")) {
        let verdict = if w.wall_s < c.wall_s * 0.9 {
            "waiting work wants more threads than cores"
        } else {
            "no gain from the extra threads here"
        };
        lines.push(format!(
            "sleep: {}x{} finished in {:.2} s against {:.2} s for {}x{}: {verdict}.",
            w.workers, w.threads, w.wall_s, c.wall_s, c.workers, c.threads
        ));
    }
    if let Some(version) = python {
        let py_serial = find("primes (python)", "serial");
        let py_threads =
            rows.iter().find(|r| r.kernel == "primes (python)" && r.mode.starts_with("threading"));
        let py_procs = find("primes (python)", "multiprocessing");
        if let (Some(s), Some(t), Some(p)) = (py_serial, py_threads, py_procs) {
            lines.push(format!(
                "python {version}: {} gives {:.2}x, multiprocessing {:.2}x over Python serial.",
                t.mode, t.speedup, p.speedup
            ));
            if let Some(f) = find("primes", "serial") {
                if s.rate() > 0.0 {
                    lines.push(format!(
                        "farm serial tests {:.1}x as many numbers per second as Python serial \
                         (same test; farm's range has larger numbers).",
                        f.rate() / s.rate()
                    ));
                }
            }
        }
    }
    lines
}

/// Colour of a mode's bars.
pub(super) fn colour(mode: &str) -> &'static str {
    match mode {
        "serial" => "#8c8c8c",
        "threads" => "#4c78a8",
        "processes" | "multiprocessing" => "#f58518",
        "composed" => "#54a24b",
        "composed wide" => "#b279a2",
        m if m.starts_with("threading") => "#4c78a8",
        _ => "#e45756",
    }
}

pub(super) fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A tick step that gives at most 10 ticks up to `max`.
pub(super) fn tick_step(max: f64) -> f64 {
    [0.25, 0.5, 1.0, 2.0, 4.0, 5.0, 10.0, 20.0, 25.0, 50.0, 100.0]
        .into_iter()
        .find(|step| max / step <= 10.0)
        .unwrap_or_else(|| (max / 10.0).ceil())
}

const W: f64 = 900.0;
const H: f64 = 500.0;
const LEFT: f64 = 250.0;
const RIGHT: f64 = 780.0;
const TOP: f64 = 72.0;
const BOTTOM: f64 = 440.0;

/// Where values land on the chart's x axis.
struct Scale {
    /// The axis runs from 0 to this.
    max: f64,
    /// Between two ticks.
    step: f64,
}

impl Scale {
    fn x(&self, v: f64) -> f64 {
        LEFT + (v.max(0.0) / self.max) * (RIGHT - LEFT)
    }
}

/// The chart: grouped horizontal bars of speedup per mode, one group per kernel, with a tick at
/// each bar's ideal speedup. A standalone 900×500 SVG.
pub(super) fn svg(rows: &[Row], title: &str, subtitle: &str) -> String {
    let mut groups: Vec<(&str, Vec<&Row>)> = Vec::new();
    for r in rows {
        match groups.iter_mut().find(|(k, _)| *k == r.kernel) {
            Some((_, members)) => members.push(r),
            None => groups.push((&r.kernel, vec![r])),
        }
    }
    let peak = rows.iter().map(|r| r.speedup.max(r.ideal_speedup)).fold(1.0, f64::max);
    let step = tick_step(peak);
    let scale = Scale { max: (peak / step).ceil() * step, step };
    let slots = (rows.len() + groups.len()).max(1) as f64;
    let slot = (BOTTOM - TOP) / slots;

    let mut s = header(title, subtitle);
    axis(&mut s, &scale);
    let mut y = TOP;
    for (kernel, members) in &groups {
        let _ = writeln!(
            s,
            "<text x=\"12\" y=\"{:.1}\" font-size=\"14\" font-weight=\"bold\">{}</text>",
            y + slot * 0.7,
            escape(kernel)
        );
        y += slot;
        for r in members {
            bar(&mut s, &scale, r, y, slot);
            y += slot;
        }
    }
    s.push_str("</svg>\n");
    s
}

/// The SVG's opening, background, title and subtitle.
fn header(title: &str, subtitle: &str) -> String {
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" \
         viewBox=\"0 0 {W} {H}\" font-family=\"Helvetica, Arial, sans-serif\">\n"
    );
    let _ = writeln!(s, "<rect x=\"0\" y=\"0\" width=\"{W}\" height=\"{H}\" fill=\"#ffffff\"/>");
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"30\" font-size=\"20\" font-weight=\"bold\" text-anchor=\"middle\">{}</text>",
        W / 2.0,
        escape(title)
    );
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"52\" font-size=\"12\" fill=\"#555555\" text-anchor=\"middle\">{}</text>",
        W / 2.0,
        escape(subtitle)
    );
    s
}

/// The grid, the axes and the axis label.
fn axis(s: &mut String, scale: &Scale) {
    let mut v = 0.0;
    while v <= scale.max + 1e-9 {
        let gx = scale.x(v);
        let _ = writeln!(
            s,
            "<line x1=\"{gx:.1}\" y1=\"{TOP}\" x2=\"{gx:.1}\" y2=\"{BOTTOM}\" stroke=\"#e3e3e3\"/>"
        );
        let _ = writeln!(
            s,
            "<text x=\"{gx:.1}\" y=\"{}\" font-size=\"12\" text-anchor=\"middle\">{}</text>",
            BOTTOM + 18.0,
            trim_number(v)
        );
        v += scale.step;
    }
    let _ = writeln!(
        s,
        "<line x1=\"{LEFT}\" y1=\"{BOTTOM}\" x2=\"{RIGHT}\" y2=\"{BOTTOM}\" stroke=\"#333333\"/>"
    );
    let _ = writeln!(
        s,
        "<line x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{BOTTOM}\" stroke=\"#333333\"/>"
    );
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" font-size=\"13\" text-anchor=\"middle\">speedup over the same kernel's serial run (×)</text>",
        (LEFT + RIGHT) / 2.0,
        BOTTOM + 42.0
    );
}

/// One row's bar in the slot starting at `y`: its label, the bar, the ideal tick, the figure.
fn bar(s: &mut String, scale: &Scale, r: &Row, y: f64, slot: f64) {
    let bar = slot * 0.72;
    let top = y + (slot - bar) / 2.0;
    let mid = y + slot / 2.0 + 4.0;
    let end = scale.x(r.speedup);
    let _ = writeln!(
        s,
        "<text x=\"{:.1}\" y=\"{mid:.1}\" font-size=\"12\" text-anchor=\"end\">{} {}×{}</text>",
        LEFT - 8.0,
        escape(&r.mode),
        r.workers,
        r.threads
    );
    let _ = writeln!(
        s,
        "<rect class=\"bar\" x=\"{LEFT}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{bar:.1}\" fill=\"{}\" stroke=\"none\"><title>{} {} {}×{}: {:.2}× in {:.2} s</title></rect>",
        end - LEFT,
        colour(&r.mode),
        escape(&r.kernel),
        escape(&r.mode),
        r.workers,
        r.threads,
        r.speedup,
        r.wall_s
    );
    let ix = scale.x(r.ideal_speedup);
    let _ = writeln!(
        s,
        "<line class=\"ideal\" x1=\"{ix:.1}\" y1=\"{:.1}\" x2=\"{ix:.1}\" y2=\"{:.1}\" stroke=\"#222222\" stroke-width=\"2\"/>",
        top - 2.0,
        top + bar + 2.0
    );
    let _ = writeln!(
        s,
        "<text x=\"{:.1}\" y=\"{mid:.1}\" font-size=\"12\">{:.2}×  ({:.2} s)</text>",
        end.max(ix) + 6.0,
        r.speedup,
        r.wall_s
    );
}

pub(super) fn trim_number(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}
