//! Durations on the command line, with their unit.

/// Parses a duration with its unit, as humantime reads it: `250ms`, `1.5s`, `90m`, `1h`, `7d`,
/// `1h 30m`. A bare number is refused, with the fix in the message: it used to mean
/// milliseconds, so `30` meant for seconds would silently be 30 ms.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(format!("`{s}` has no unit: write {s}s or {s}ms"));
    }
    let d = humantime::parse_duration(s)
        .map_err(|e| format!("`{s}` is not a duration like 250ms, 1.5s, 90m or 1h: {e}"))?;
    if d.is_zero() {
        return Err("duration must be more than zero".into());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("500ms"), Ok(std::time::Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(std::time::Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5s"), Ok(std::time::Duration::from_millis(1500)));
        assert_eq!(parse_duration("250ms"), Ok(std::time::Duration::from_millis(250)));
        assert_eq!(parse_duration("90m"), Ok(std::time::Duration::from_secs(90 * 60)));
        assert_eq!(parse_duration("1h"), Ok(std::time::Duration::from_secs(3600)));
        assert_eq!(parse_duration("2h"), Ok(std::time::Duration::from_secs(7200)));
        assert_eq!(parse_duration("7d"), Ok(std::time::Duration::from_secs(7 * 86_400)));
        assert!(parse_duration("2x").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("x").is_err());
    }

    #[test]
    fn a_bare_number_is_refused_with_the_fix() {
        assert_eq!(parse_duration("30"), Err("`30` has no unit: write 30s or 30ms".to_string()));
        assert!(parse_duration("1.5").is_err());
    }
}
