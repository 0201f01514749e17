//! Formats a [`Report`] for people (one line per check with ✓ ✗ ! -, then what the client
//! prints, the cause and the fix) and for scripts (JSON). Formatting only; no checks here.

use super::{CheckStatus, Report};

/// The human report. `color` adds ANSI colours to the status marks (the caller decides, from
/// `NO_COLOR` and whether the output is a terminal).
pub fn render_text(report: &Report, color: bool) -> String {
    let mut out = format!("regkit doctor {}\n", report.target);
    let width = report.findings.iter().map(|f| f.check.len()).max().unwrap_or(0);
    for f in &report.findings {
        let (mark, code) = match f.status {
            CheckStatus::Ok => ("✓", "32"),
            CheckStatus::Fail => ("✗", "1;31"),
            CheckStatus::Warn => ("!", "33"),
            CheckStatus::Skip => ("-", "2"),
        };
        let mark = if color { format!("\x1b[{code}m{mark}\x1b[0m") } else { mark.to_string() };
        out.push_str(&format!("  {mark} {:width$}  {}\n", f.check, f.summary));
        let pad = " ".repeat(width + 6);
        if let Some(m) = &f.client_message {
            out.push_str(&format!("{pad}client says: {m}\n"));
        }
        if let Some(c) = &f.cause {
            out.push_str(&format!("{pad}cause: {c}\n"));
        }
        if let Some(x) = &f.fix {
            out.push_str(&format!("{pad}fix: {x}\n"));
        }
        for d in &f.details {
            out.push_str(&format!("{pad}{d}\n"));
        }
    }
    let failed = report.findings.iter().filter(|f| f.status == CheckStatus::Fail).count();
    if report.ok {
        out.push_str("Result: a client would succeed.\n");
    } else {
        let plural = if failed == 1 { "" } else { "s" };
        out.push_str(&format!("Result: a client would fail ({failed} problem{plural}).\n"));
    }
    out
}

/// The JSON report: `{"target", "ok", "findings": [{"check", "status", "summary",
/// "client_message"?, "cause"?, "fix"?, "details"?}]}`.
pub fn render_json(report: &Report) -> String {
    // Serialising plain strings, bools and vectors cannot fail.
    serde_json::to_string_pretty(report)
        .unwrap_or_else(|e| format!("{{\"error\":{:?}}}", e.to_string()))
}
