//! What people see: the table, the notes under it, and the SVG chart.

use super::*;

/// The table for people.
pub(super) fn table(rows: &[Row]) -> String {
    let headers =
        ["KERNEL", "MODE", "P x T", "WALL S", "JOB S", "SPEEDUP", "EFFICIENCY", "ITEMS/S"];
    let mut table = crate::tables::new(&headers);
    for r in rows {
        let job =
            r.elapsed_ms.map_or_else(|| "-".to_string(), |ms| format!("{:.2}", ms as f64 / 1e3));
        crate::tables::add_row(
            &mut table,
            vec![
                r.kernel.clone(),
                r.mode.clone(),
                format!("{} x {}", r.workers, r.threads),
                format!("{:.2}", r.wall_s),
                job,
                format!("{:.2}", r.speedup),
                format!("{:.0}%", r.efficiency * 100.0),
                human_rate(r.rate()),
            ],
        );
    }
    crate::tables::render(table, &[2, 3, 4, 5, 6, 7])
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
pub(super) fn notes(rows: &[Row], n: usize, python: Option<&PythonInfo>) -> Vec<String> {
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
    if let Some(info) = python {
        let py = |mode: &str| find(PYTHON_KERNEL, mode);
        let py_threads = rows
            .iter()
            .find(|r| r.kernel == PYTHON_KERNEL && r.mode.starts_with("ThreadPoolExecutor"));
        if let (Some(s), Some(t), Some(p)) = (py("serial"), py_threads, py("ProcessPoolExecutor")) {
            lines.push(format!(
                "python {}: {} gives {:.2}x, ProcessPoolExecutor {:.2}x over Python serial.",
                info.version, t.mode, t.speedup, p.speedup
            ));
            let farm: Vec<String> = rows
                .iter()
                .filter(|r| r.kernel == PYTHON_KERNEL && r.mode.starts_with("farm.Executor"))
                .map(|r| format!("{}x{} {:.2}x", r.workers, r.threads, r.speedup))
                .collect();
            if !farm.is_empty() {
                lines.push(format!(
                    "farm.Executor (farm {}): {} over Python serial (P processes x T threads).",
                    info.farm.as_deref().unwrap_or("?"),
                    farm.join(", ")
                ));
            }
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
        lines.extend(info.missing());
    }
    lines
}

/// Colour of a mode's bars.
pub(super) fn colour(mode: &str) -> &'static str {
    match mode {
        "serial" => "#8c8c8c",
        "threads" => "#4c78a8",
        "processes" | "ProcessPoolExecutor" => "#f58518",
        "farm.Executor threads" => "#72b7b2",
        "farm.Executor processes" => "#e45756",
        "farm.Executor composed" => "#9d755d",
        "composed" => "#54a24b",
        "composed wide" => "#b279a2",
        m if m.starts_with("ThreadPoolExecutor") => "#4c78a8",
        _ => "#bab0ac",
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
const LEFT: f64 = 250.0;
const RIGHT: f64 = 780.0;
const TOP: f64 = 72.0;
/// Height of one bar's slot.
const SLOT: f64 = 26.0;
/// Above a panel's bars: the kernel's name.
const PANEL_HEAD: f64 = 26.0;
/// Below a panel's bars: its tick labels and a gap.
const PANEL_FOOT: f64 = 34.0;
/// Below the last panel: the axis caption.
const CAPTION: f64 = 34.0;
/// One line saying which rows are missing, under the caption.
const NOTE: f64 = 18.0;

/// Where values land on a panel's x axis.
struct Scale {
    /// The axis runs from 0 to this.
    max: f64,
    /// Between two ticks.
    step: f64,
}

impl Scale {
    /// A scale that fits every speedup and ideal of `rows`.
    fn fitting(rows: &[&Row]) -> Scale {
        let peak = rows.iter().map(|r| r.speedup.max(r.ideal_speedup)).fold(1.0, f64::max);
        let step = tick_step(peak);
        Scale { max: (peak / step).ceil() * step, step }
    }

    fn x(&self, v: f64) -> f64 {
        LEFT + (v.max(0.0) / self.max) * (RIGHT - LEFT)
    }
}

/// The rows grouped by kernel, in their order.
fn groups(rows: &[Row]) -> Vec<(&str, Vec<&Row>)> {
    let mut groups: Vec<(&str, Vec<&Row>)> = Vec::new();
    for r in rows {
        match groups.iter_mut().find(|(k, _)| *k == r.kernel) {
            Some((_, members)) => members.push(r),
            None => groups.push((&r.kernel, vec![r])),
        }
    }
    groups
}

/// The chart: one panel per kernel, each with its own speedup scale (a kernel that waits
/// reaches speedups the CPU-bound ones never do, and on one scale squashes them), horizontal
/// bars of speedup per mode with a tick at each bar's ideal speedup, and under them one line per
/// note in `missing` (rows that could not be measured, and why). A standalone SVG.
pub(super) fn svg(rows: &[Row], title: &str, subtitle: &str, missing: &[String]) -> String {
    let groups = groups(rows);
    let panels: f64 = groups
        .iter()
        .map(|(_, members)| PANEL_HEAD + SLOT * members.len() as f64 + PANEL_FOOT)
        .sum();
    let height = TOP + panels + CAPTION + NOTE * missing.len() as f64;
    let mut s = header(title, subtitle, height);
    let mut y = TOP;
    for (kernel, members) in &groups {
        let scale = Scale::fitting(members);
        let _ = writeln!(
            s,
            "<text class=\"panel\" x=\"12\" y=\"{:.1}\" font-size=\"14\" font-weight=\"bold\">{}</text>",
            y + PANEL_HEAD * 0.7,
            escape(kernel)
        );
        y += PANEL_HEAD;
        let bottom = y + SLOT * members.len() as f64;
        axis(&mut s, &scale, y, bottom);
        for r in members {
            bar(&mut s, &scale, r, y, SLOT);
            y += SLOT;
        }
        y += PANEL_FOOT;
    }
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{:.1}\" font-size=\"13\" text-anchor=\"middle\">speedup over the same kernel's serial run (×); each panel has its own scale</text>",
        (LEFT + RIGHT) / 2.0,
        y + CAPTION / 2.0
    );
    y += CAPTION;
    for line in missing {
        let _ = writeln!(
            s,
            "<text class=\"missing\" x=\"12\" y=\"{:.1}\" font-size=\"11\" fill=\"#a33\">{}</text>",
            y + NOTE * 0.6,
            escape(line)
        );
        y += NOTE;
    }
    s.push_str("</svg>\n");
    s
}

/// The SVG's opening, background, title and subtitle.
fn header(title: &str, subtitle: &str, height: f64) -> String {
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{height}\" \
         viewBox=\"0 0 {W} {height}\" font-family=\"Helvetica, Arial, sans-serif\">\n"
    );
    let _ =
        writeln!(s, "<rect x=\"0\" y=\"0\" width=\"{W}\" height=\"{height}\" fill=\"#ffffff\"/>");
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

/// A panel's grid, axes and tick labels, between `top` and `bottom`.
fn axis(s: &mut String, scale: &Scale, top: f64, bottom: f64) {
    let mut v = 0.0;
    while v <= scale.max + 1e-9 {
        let gx = scale.x(v);
        let _ = writeln!(
            s,
            "<line x1=\"{gx:.1}\" y1=\"{top:.1}\" x2=\"{gx:.1}\" y2=\"{bottom:.1}\" stroke=\"#e3e3e3\"/>"
        );
        let _ = writeln!(
            s,
            "<text class=\"tick\" x=\"{gx:.1}\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"middle\">{}</text>",
            bottom + 16.0,
            trim_number(v)
        );
        v += scale.step;
    }
    let _ = writeln!(
        s,
        "<line x1=\"{LEFT}\" y1=\"{bottom:.1}\" x2=\"{RIGHT}\" y2=\"{bottom:.1}\" stroke=\"#333333\"/>"
    );
    let _ = writeln!(
        s,
        "<line x1=\"{LEFT}\" y1=\"{top:.1}\" x2=\"{LEFT}\" y2=\"{bottom:.1}\" stroke=\"#333333\"/>"
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
