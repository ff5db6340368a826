//! Every table the CLI prints (jobs, workers, kinds' params, the showdown), laid out by
//! comfy-table so a long name widens its column instead of breaking the alignment: borderless
//! columns two spaces apart, numbers right-aligned, never wrapped to the terminal's width.

use comfy_table::{presets, CellAlignment, ContentArrangement, Table};
use farm_client::{JobStatus, WorkerInfo};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// An empty table with these headers (none if `headers` is empty).
pub fn new(headers: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_preset(presets::NOTHING).set_content_arrangement(ContentArrangement::Disabled);
    if !headers.is_empty() {
        table.set_header(headers.to_vec());
    }
    table
}

/// Adds a row; each cell's control characters are escaped ([`crate::out::escaped`]), newlines
/// included, so text from a worker or a job can neither split the row nor drive the terminal.
/// Every table's rows go through here.
pub fn add_row(table: &mut Table, cells: Vec<String>) {
    table.add_row(cells.iter().map(|c| crate::out::escaped(c, false).into_owned()));
}

/// The table as text, one line per row, without trailing spaces; the columns listed in
/// `right` are right-aligned.
pub fn render(mut table: Table, right: &[usize]) -> String {
    for (i, column) in table.column_iter_mut().enumerate() {
        column.set_padding((0, 2));
        if right.contains(&i) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    let mut text: String =
        table.lines().map(|l| l.trim_end().to_string()).collect::<Vec<_>>().join("\n");
    text.push('\n');
    text
}

/// A duration in its largest whole unit: `850ms`, `12s`, `3m`, `5h`, `2d`.
pub fn short(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => format!("{}ms", d.as_millis()),
        1..60 => format!("{:.1}s", d.as_secs_f64()),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86_400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// How long ago a Unix time in milliseconds was, `-` if unknown.
pub fn ago(unix_ms: u64, now: SystemTime) -> String {
    if unix_ms == 0 {
        return "-".into();
    }
    let now_ms = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
    format!("{} ago", short(Duration::from_millis(now_ms.saturating_sub(unix_ms))))
}

/// The first line of `text`, cut to `max` characters with an ellipsis.
pub fn clip(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or("");
    if line.chars().count() <= max && !text.contains('\n') {
        return line.to_string();
    }
    let cut: String = line.chars().take(max.saturating_sub(1)).collect();
    format!("{cut}…")
}

/// One row per job; `errors` adds the ERROR column (cut to a line).
pub fn jobs(jobs: &[JobStatus], errors: bool, now: SystemTime) -> String {
    let mut headers =
        vec!["JOB", "KIND", "STATE", "DONE/SHARDS", "IN FLIGHT", "PRIO", "SUBMITTED", "ELAPSED"];
    if errors {
        headers.push("ERROR");
    }
    let mut table = new(&headers);
    for j in jobs {
        let mut row = vec![
            j.job.to_string(),
            j.kind.clone(),
            j.state.to_string(),
            format!("{}/{}", j.done, j.shards),
            j.in_flight.to_string(),
            j.priority.to_string(),
            ago(j.submitted_unix_ms, now),
            short(Duration::from_millis(j.elapsed_ms)),
        ];
        if errors {
            // A job that cannot go on says why where a failed one says its error.
            let note =
                j.error.clone().or_else(|| j.waiting.as_ref().map(|w| format!("waiting: {w}")));
            row.push(note.map_or_else(|| "-".into(), |e| clip(&e, 60)));
        }
        add_row(&mut table, row);
    }
    render(table, &[0, 3, 4, 5, 6, 7])
}

/// One row per worker.
pub fn workers(workers: &[WorkerInfo]) -> String {
    let headers = [
        "WORKER",
        "NAME",
        "HOST",
        "PID",
        "THREADS",
        "IN FLIGHT",
        "DONE",
        "RESTARTS",
        "DIALED",
        "LABELS",
        "STATE",
    ];
    let mut table = new(&headers);
    for w in workers {
        let name = if w.name.is_empty() { "-" } else { &w.name };
        let state = match (&w.suspect, w.draining) {
            (Some(why), _) => format!("suspect: {why}"),
            (None, true) => "draining".into(),
            (None, false) => "ready".into(),
        };
        let labels: Vec<String> = w.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let labels = if labels.is_empty() { "-".into() } else { clip(&labels.join(","), 48) };
        add_row(
            &mut table,
            vec![
                w.worker.to_string(),
                name.to_string(),
                w.hostname.clone(),
                w.pid.to_string(),
                w.threads.to_string(),
                w.in_flight.to_string(),
                w.done.to_string(),
                w.restarts.to_string(),
                w.dialed_by.to_string(),
                labels,
                state,
            ],
        );
    }
    render(table, &[0, 3, 4, 5, 6, 7])
}

#[cfg(test)]
mod tests {
    use super::*;
    use farm_client::{JobState, JsonText};

    fn job(id: u64, kind: &str, error: Option<&str>) -> JobStatus {
        JobStatus {
            job: id,
            kind: kind.into(),
            state: if error.is_some() { JobState::Failed } else { JobState::Succeeded },
            shards: 700,
            done: 600,
            in_flight: 0,
            result: JsonText::null(),
            error: error.map(String::from),
            elapsed_ms: 200,
            priority: 5,
            reruns: 0,
            submitted_unix_ms: 1_000_000,
            result_in_store: false,
            result_left_out: false,
            waiting: None,
        }
    }

    #[test]
    fn long_names_keep_every_column_aligned() {
        let now = UNIX_EPOCH + Duration::from_secs(1000 + 180);
        let text = jobs(
            &[job(1, "primes", None), job(22, "a-very-long-kernel-name", Some("shard 3 failed"))],
            true,
            now,
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        // Every column starts at the same offset on every line: the STATE column's words line
        // up under its header, however long the kind before it.
        let at = |l: &str, word: &str| l.find(word).expect(word);
        assert_eq!(at(lines[0], "STATE"), at(lines[1], "succeeded"), "{text}");
        assert_eq!(at(lines[0], "STATE"), at(lines[2], "failed"), "{text}");
        assert!(lines[2].contains("shard 3 failed") && lines[2].contains("3m00s ago"), "{text}");
        assert!(lines[1].contains("600/700") && lines[1].contains("200ms"), "{text}");
    }

    #[test]
    fn a_newline_or_an_escape_in_a_cell_stays_on_its_row_escaped() {
        let text = jobs(&[job(1, "evil\nkind\u{1b}[2J", Some("x\u{7}"))], true, SystemTime::now());
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text.contains("evil\\nkind\\u{1b}[2J") && text.contains("x\\u{7}"), "{text}");
        assert!(!text.contains('\u{1b}') && !text.contains('\u{7}'), "{text}");
    }

    #[test]
    fn durations_are_short_and_errors_one_line() {
        assert_eq!(short(Duration::from_millis(1500)), "1.5s");
        assert_eq!(short(Duration::from_secs(3 * 3600 + 120)), "3h02m");
        assert_eq!(clip("first\nsecond", 60), "first…");
        assert_eq!(clip(&"x".repeat(70), 10).chars().count(), 10);
        assert_eq!(ago(0, SystemTime::now()), "-");
    }
}
