//! Durations written the way Go's `time.ParseDuration` reads them (`10s`, `168h`, `1h30m`,
//! `1.5s`, `300ms`), because that is how the reference registry's `config.yml` spells them.

use std::time::Duration;

/// Parses a Go-style duration. Negative durations are refused: no setting here can use one.
pub fn parse(text: &str) -> Option<Duration> {
    let s = text.trim();
    let s = s.strip_prefix('+').unwrap_or(s);
    if s.is_empty() || s.starts_with('-') {
        return None;
    }
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = s;
    let mut total_nanos: u128 = 0;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let (num, after) = rest.split_at(num_len);
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return None;
        }
        let unit_len = after.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3_600 * 1_000_000_000,
            _ => return None,
        };
        let (int_part, frac_part) = num.split_once('.').unwrap_or((num, ""));
        let int: u128 = if int_part.is_empty() { 0 } else { int_part.parse().ok()? };
        total_nanos = total_nanos.checked_add(int.checked_mul(unit_nanos)?)?;
        if !frac_part.is_empty() {
            let digits = frac_part.len().min(18) as u32;
            let frac: u128 = frac_part[..digits as usize].parse().ok()?;
            total_nanos = total_nanos.checked_add(frac * unit_nanos / 10u128.pow(digits))?;
        }
        rest = after;
    }
    let secs = u64::try_from(total_nanos / 1_000_000_000).ok()?;
    Some(Duration::new(secs, (total_nanos % 1_000_000_000) as u32))
}

/// Formats a duration in the same notation (`1h30m0s` is written `1h30m`).
pub fn format(d: Duration) -> String {
    if d.is_zero() {
        return "0s".to_string();
    }
    let mut out = String::new();
    let total = d.as_secs();
    let (h, m, s) = (total / 3600, (total / 60) % 60, total % 60);
    let nanos = d.subsec_nanos();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || nanos > 0 {
        if nanos == 0 {
            out.push_str(&format!("{s}s"));
        } else if total == 0 && nanos % 1_000_000 == 0 {
            out.push_str(&format!("{}ms", nanos / 1_000_000));
        } else {
            let frac = format!("{nanos:09}");
            out.push_str(&format!("{s}.{}s", frac.trim_end_matches('0')));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        let cases = [
            ("10s", Duration::from_secs(10)),
            ("168h", Duration::from_secs(168 * 3600)),
            ("1h30m", Duration::from_secs(5400)),
            ("1.5s", Duration::from_millis(1500)),
            ("300ms", Duration::from_millis(300)),
            ("2us", Duration::from_micros(2)),
            ("5µs", Duration::from_micros(5)),
            ("7ns", Duration::from_nanos(7)),
            ("0", Duration::ZERO),
            ("0s", Duration::ZERO),
            (".5m", Duration::from_secs(30)),
            ("1h0m10s", Duration::from_secs(3610)),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text), Some(want), "{text}");
        }
    }

    #[test]
    fn refuses_what_go_refuses_and_negatives() {
        for bad in ["", "10", "s", "10x", "1..5s", "-5s", "1h 30m", "ten seconds", "."] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn formats_back() {
        for text in ["10s", "168h", "1h30m", "1.5s", "300ms", "0s", "24h"] {
            assert_eq!(format(parse(text).unwrap()), text);
        }
    }
}
