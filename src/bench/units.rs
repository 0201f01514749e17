//! Human-friendly sizes (`1GiB`, `16MiB`, `512KiB`, `4096`) and durations (`10s`, `500ms`,
//! `2m`) for the `bench` options, parsed strictly so a typo is an error rather than a surprise.

use std::time::Duration;

use super::Error;

/// Parses a byte count: a whole number with an optional binary (`KiB`, `MiB`, `GiB`, `TiB`),
/// decimal (`kB`, `MB`, `GB`) or plain `B` suffix. The result must be at least one byte.
pub fn parse_size(text: &str) -> Result<u64, Error> {
    let bad = |reason: &str| Error::InvalidSize { value: text.to_string(), reason: reason.into() };
    let trimmed = text.trim();
    let split = trimmed.find(|c: char| !c.is_ascii_digit()).unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(split);
    if digits.is_empty() {
        return Err(bad("expected a number such as 1GiB, 16MiB, 512KiB or 4096"));
    }
    let number: u64 = digits.parse().map_err(|_| bad("number too large"))?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => return Err(bad("unknown unit (use B, KiB, MiB, GiB, TiB, kB, MB, GB or TB)")),
    };
    let bytes = number.checked_mul(multiplier).ok_or_else(|| bad("size too large"))?;
    if bytes == 0 {
        return Err(bad("must be at least one byte"));
    }
    Ok(bytes)
}

/// Parses a duration: a whole number followed by `ms`, `s`, `m` or `h` (a bare number means
/// seconds). The result must be longer than zero.
pub fn parse_duration(text: &str) -> Result<Duration, Error> {
    let bad =
        |reason: &str| Error::InvalidDuration { value: text.to_string(), reason: reason.into() };
    let trimmed = text.trim();
    let split = trimmed.find(|c: char| !c.is_ascii_digit()).unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(split);
    if digits.is_empty() {
        return Err(bad("expected a number with a unit, such as 10s, 500ms or 2m"));
    }
    let number: u64 = digits.parse().map_err(|_| bad("number too large"))?;
    let millis: u64 = match unit.trim() {
        "ms" => 1,
        "" | "s" => 1_000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        _ => return Err(bad("unknown unit (use ms, s, m or h)")),
    };
    let total = number.checked_mul(millis).ok_or_else(|| bad("duration too long"))?;
    if total == 0 {
        return Err(bad("must be longer than zero"));
    }
    Ok(Duration::from_millis(total))
}

/// Formats a byte count the way [`parse_size`] reads it, choosing the largest exact binary unit
/// (`16MiB`), or two decimals of the largest unit that fits (`1.50GiB`).
pub fn format_size(bytes: u64) -> String {
    const UNITS: [(&str, u64); 4] =
        [("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (name, unit) in UNITS {
        if bytes >= unit {
            return if bytes % unit == 0 {
                format!("{}{name}", bytes / unit)
            } else {
                format!("{:.2}{name}", bytes as f64 / unit as f64)
            };
        }
    }
    format!("{bytes}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("16MiB").unwrap(), 16 << 20);
        assert_eq!(parse_size("512KiB").unwrap(), 512 << 10);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("2mb").unwrap(), 2_000_000);
        assert_eq!(parse_size(" 3 M ").unwrap(), 3 << 20);
        for bad in ["", "GiB", "1.5GiB", "0", "12XB", "-1", "99999999999999999999"] {
            let err = parse_size(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
        assert!(parse_size("16777216TiB").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        for bad in ["", "s", "0s", "1.5s", "10 days", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formatting() {
        assert_eq!(format_size(16 << 20), "16MiB");
        assert_eq!(format_size(1 << 30), "1GiB");
        assert_eq!(format_size(3 << 29), "1.50GiB");
        assert_eq!(format_size(100), "100B");
    }
}
