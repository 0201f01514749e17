//! In-place editing of k3s's `registries.yaml`, line by line, so that everything regkit does not
//! own (comments, blank lines, quoting, key order, indentation) stays byte for byte.
//!
//! The file is read as block-style YAML: one `key: value` per line, nesting by indentation with
//! spaces. regkit's key sits three levels down, `configs:` > `"HOST:PORT":` > `tls:` >
//! `ca_file:`; each level is looked up among the lines indented like its siblings. A missing
//! level is inserted after the last line of its parent's block, indented like its siblings or,
//! when it has none, one step deeper than its parent (the step is the file's own indentation
//! under its parent, two spaces for a new file). Uninstall deletes the `ca_file:` line, then
//! each parent line it left without content.
//!
//! What a line view cannot change safely is refused with the line number and what was found,
//! never rewritten: flow style (`{...}`) on the path to the key, anchors, aliases, tags, merge
//! keys, block scalars and values continued on further lines inside `configs:`, tab
//! indentation, several documents, Windows line endings. The bundle's `install.sh` runs the
//! same algorithm in awk (its `k3s_edit.awk`), so on a file both accept both produce the same
//! bytes, and both refuse what this module refuses.
//!
//! They differ in one way: regkit also parses the whole file as YAML, before the edit and
//! after it ([`super::k3s`]), and the script, which has no YAML parser, does neither. So regkit
//! alone refuses a file that is not valid YAML (a syntax error or a duplicate key anywhere,
//! even in a part the edit does not touch), and an edit whose new text would parse to anything
//! but the old document with just that key added or removed. On such a file `install.sh`
//! edits the lines and writes, where `regkit trust install` and `uninstall` refuse and write
//! nothing.

use std::fmt;

/// Why a file cannot be edited in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// 1-based line number; 0 for the file as a whole.
    pub line: usize,
    /// What was found there.
    pub reason: String,
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            0 => write!(f, "{}", self.reason),
            n => write!(f, "line {n}: {}", self.reason),
        }
    }
}

/// The outcome of adding the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Merged {
    /// The key already holds the value.
    Unchanged,
    /// The new file text.
    Write(String),
    /// The key holds another value (returned, unquoted); nothing changed.
    Conflict(String),
}

/// The outcome of taking the key out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    /// The registry has no `ca_file`.
    NotPresent,
    /// The registry's `ca_file` holds another value (returned); nothing changed.
    Differs(String),
    /// The new file text.
    Write(String),
    /// Nothing but white space would be left.
    RemoveFile,
}

type Res<T> = Result<T, Unsupported>;

fn at<T>(index: usize, reason: impl Into<String>) -> Res<T> {
    Err(Unsupported { line: index + 1, reason: reason.into() })
}

/// Sets `configs."<registry>".tls.ca_file` to `ca_file` in `text` (empty for a new file). An
/// existing different value is a [`Merged::Conflict`] unless `force`.
pub fn merge(text: &str, registry: &str, ca_file: &str, force: bool) -> Res<Merged> {
    let mut doc = Doc::new(text)?;
    let new_ca = |indent: usize| format!("{}ca_file: {ca_file}", sp(indent));
    let Some(configs) = doc.find_top("configs") else {
        let at = doc.lines.len();
        doc.insert(
            at,
            &["configs:".into(), format!("  \"{registry}\":"), "    tls:".into(), new_ca(6)],
        );
        return Ok(Merged::Write(doc.render()));
    };
    let cb = doc.section(configs, "configs")?;
    doc.check_values(&cb)?;
    let e = cb.child.unwrap_or(2);
    let Some(entry) = doc.find_key(&cb, registry) else {
        let lines =
            [format!("{}\"{registry}\":", sp(e)), format!("{}tls:", sp(2 * e)), new_ca(3 * e)];
        doc.insert(doc.insert_point(&cb, configs), &lines);
        return Ok(Merged::Write(doc.render()));
    };
    let eb = doc.section(entry, &format!("configs.\"{registry}\""))?;
    let c = eb.child.unwrap_or(2 * e);
    let Some(tls) = doc.find_key(&eb, "tls") else {
        let lines = [format!("{}tls:", sp(c)), new_ca(2 * c - e)];
        doc.insert(doc.insert_point(&eb, entry), &lines);
        return Ok(Merged::Write(doc.render()));
    };
    let tb = doc.section(tls, &format!("configs.\"{registry}\".tls"))?;
    let t = tb.child.unwrap_or(2 * c - e);
    let Some(line) = doc.find_key(&tb, "ca_file") else {
        doc.insert(doc.insert_point(&tb, tls), &[new_ca(t)]);
        return Ok(Merged::Write(doc.render()));
    };
    let current = doc.ca_value(line)?;
    if current == ca_file {
        return Ok(Merged::Unchanged);
    }
    if !current.is_empty() && !force {
        return Ok(Merged::Conflict(current));
    }
    doc.lines[line] = new_ca(t);
    Ok(Merged::Write(doc.render()))
}

/// Removes `configs."<registry>".tls.ca_file` when it holds `ca_file`, then the `tls:`, the
/// registry's entry and `configs:` lines when that left them without content.
pub fn remove(text: &str, registry: &str, ca_file: &str) -> Res<Removed> {
    let mut doc = Doc::new(text)?;
    let Some(configs) = doc.find_top("configs") else { return Ok(Removed::NotPresent) };
    let cb = doc.section(configs, "configs")?;
    doc.check_values(&cb)?;
    let Some(entry) = doc.find_key(&cb, registry) else { return Ok(Removed::NotPresent) };
    let eb = doc.section(entry, &format!("configs.\"{registry}\""))?;
    let Some(tls) = doc.find_key(&eb, "tls") else { return Ok(Removed::NotPresent) };
    let tb = doc.section(tls, &format!("configs.\"{registry}\".tls"))?;
    let Some(line) = doc.find_key(&tb, "ca_file") else { return Ok(Removed::NotPresent) };
    let current = doc.ca_value(line)?;
    if current != ca_file {
        return Ok(Removed::Differs(current));
    }
    // Innermost first: each removal can only empty the block around it.
    doc.lines.remove(line);
    for key in [tls, entry, configs] {
        if doc.block(key)?.last.is_none() {
            doc.lines.remove(key);
        }
    }
    if doc.lines.iter().all(|l| l.trim_matches(WS).is_empty()) {
        return Ok(Removed::RemoveFile);
    }
    Ok(Removed::Write(doc.render()))
}

/// The lines below a key line, up to the next line indented as little as the key.
struct Block {
    start: usize,
    end: usize,
    /// The indentation of the block's keys, when it has any.
    child: Option<usize>,
    /// The last line with content.
    last: Option<usize>,
}

struct Doc {
    lines: Vec<String>,
    /// A leading `---` line, which is not content.
    marker: Option<usize>,
}

impl Doc {
    fn new(text: &str) -> Res<Doc> {
        if text.contains('\r') {
            let reason = "has Windows line endings (CRLF); convert it with dos2unix first";
            return Err(Unsupported { line: 0, reason: reason.into() });
        }
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        let mut marker = None;
        let mut seen = false;
        for (i, l) in lines.iter().enumerate() {
            let lead = &l[..l.len() - l.trim_start_matches([' ', '\t']).len()];
            if is_content(l) && lead.contains('\t') {
                return at(i, "is indented with a tab (YAML indents with spaces)");
            }
            if l.starts_with('%') {
                return at(i, "is a YAML directive (%)");
            }
            if is_doc_marker(l) {
                if !seen && marker.is_none() && l.trim_end_matches(WS) == "---" {
                    marker = Some(i);
                    continue;
                }
                return at(i, "starts or ends a YAML document (--- or ...); k3s reads one");
            }
            if !is_content(l) {
                continue;
            }
            if !seen && indent(l) != 0 {
                return at(i, "the top-level keys are indented; they must start in column 0");
            }
            seen = true;
            if indent(l) == 0 && key_of(l).is_none() {
                return at(i, "is not a `key: value` line (only block-style YAML is edited)");
            }
        }
        Ok(Doc { lines, marker })
    }

    fn content(&self, i: usize) -> bool {
        Some(i) != self.marker && is_content(&self.lines[i])
    }

    fn find_top(&self, name: &str) -> Option<usize> {
        (0..self.lines.len()).find(|&i| {
            self.content(i)
                && indent(&self.lines[i]) == 0
                && key_of(&self.lines[i]).is_some_and(|(k, _)| k == name)
        })
    }

    /// The block of a key line that must hold a mapping written below it.
    fn section(&self, key: usize, path: &str) -> Res<Block> {
        let value = key_of(&self.lines[key]).map(|(_, v)| v).unwrap_or_default();
        if !is_empty_value(value) {
            return at(
                key,
                format!(
                    "{path} has its value on the same line ({}), not as a block below it",
                    value.trim_matches(WS)
                ),
            );
        }
        self.block(key)
    }

    fn block(&self, key: usize) -> Res<Block> {
        let own = indent(&self.lines[key]);
        let start = key + 1;
        let mut b = Block { start, end: self.lines.len(), child: None, last: None };
        for i in start..self.lines.len() {
            if !self.content(i) {
                continue;
            }
            let line = &self.lines[i];
            let d = indent(line);
            if d <= own {
                if b.child.is_none() && d == own && is_list_item(line) {
                    return at(i, "is a list item where a mapping was expected");
                }
                b.end = i;
                break;
            }
            match b.child {
                Some(c) if d < c => {
                    return at(i, "is indented less than the line starting its block");
                }
                Some(c) if d > c => {}
                _ if key_of(line).is_none() => {
                    return at(i, "is not a `key: value` line where a mapping key was expected");
                }
                _ => b.child = Some(d),
            }
            b.last = Some(i);
        }
        Ok(b)
    }

    /// Refuses constructs inside `configs:` that a line edit could change the meaning of.
    fn check_values(&self, b: &Block) -> Res<()> {
        for i in b.start..b.end {
            if !self.content(i) {
                continue;
            }
            let Some((key, value)) = key_of(&self.lines[i]) else { continue };
            if key == "<<" {
                return at(i, "is a merge key (<<)");
            }
            if let Some(what) = value_problem(value) {
                return at(i, format!("{key} holds {what}"));
            }
        }
        Ok(())
    }

    fn find_key(&self, b: &Block, name: &str) -> Option<usize> {
        let child = b.child?;
        (b.start..b.end).find(|&i| {
            self.content(i)
                && indent(&self.lines[i]) == child
                && key_of(&self.lines[i]).is_some_and(|(k, _)| k == name)
        })
    }

    /// Where lines go to end up last in the block of `key`.
    fn insert_point(&self, b: &Block, key: usize) -> usize {
        b.last.unwrap_or(key) + 1
    }

    /// The `ca_file:` value, unquoted; its value must fit on its line.
    fn ca_value(&self, line: usize) -> Res<String> {
        let next = (line + 1..self.lines.len()).find(|&i| self.content(i));
        if next.is_some_and(|n| indent(&self.lines[n]) > indent(&self.lines[line])) {
            return at(line, "ca_file's value continues on the next line");
        }
        let value = key_of(&self.lines[line]).map(|(_, v)| v).unwrap_or_default();
        Ok(scalar(value))
    }

    fn insert(&mut self, at: usize, lines: &[String]) {
        for (n, l) in lines.iter().enumerate() {
            self.lines.insert(at + n, l.clone());
        }
    }

    fn render(&self) -> String {
        self.lines.iter().map(|l| format!("{l}\n")).collect()
    }
}

/// The white space the line rules know (the awk twin trims the same two).
const WS: [char; 2] = [' ', '\t'];

fn sp(n: usize) -> String {
    " ".repeat(n)
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn is_content(line: &str) -> bool {
    let t = line.trim_start_matches([' ', '\t']);
    !t.is_empty() && !t.starts_with('#')
}

fn is_doc_marker(line: &str) -> bool {
    (line.starts_with("---") || line.starts_with("..."))
        && matches!(line.as_bytes().get(3), None | Some(b' ' | b'\t'))
}

fn is_list_item(line: &str) -> bool {
    let t = line.trim_start_matches(' ');
    t == "-" || t.starts_with("- ")
}

fn is_empty_value(value: &str) -> bool {
    let v = value.trim_matches(WS);
    v.is_empty() || v.starts_with('#')
}

/// A mapping key line: the key, unquoted, and the text after its colon.
fn key_of(line: &str) -> Option<(String, &str)> {
    let rest = line.trim_start_matches(' ');
    let (key, after) = match rest.chars().next()? {
        q @ ('"' | '\'') => {
            let inner = &rest[1..];
            let end = inner.find(q)?;
            (inner[..end].to_string(), inner[end + 1..].trim_start_matches(' '))
        }
        c if "[]{}#&*!|>%@`?,:".contains(c) => return None,
        _ if is_list_item(rest) => return None,
        _ => {
            let b = rest.as_bytes();
            let colon =
                (0..b.len()).find(|&i| b[i] == b':' && b.get(i + 1).is_none_or(|&n| n == b' '))?;
            let key = rest[..colon].trim_end_matches(WS);
            if key.contains(" #") {
                return None;
            }
            (key.to_string(), &rest[colon..])
        }
    };
    let after = after.strip_prefix(':')?;
    if !(after.is_empty() || after.starts_with(' ')) {
        return None;
    }
    Some((key, after))
}

/// A one-line scalar: quotes taken off, a trailing comment dropped.
fn scalar(value: &str) -> String {
    let v = value.trim_matches(WS);
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q) {
            return inner.split(q).next().unwrap_or_default().to_string();
        }
    }
    if v.starts_with('#') {
        return String::new();
    }
    v.split(" #").next().unwrap_or_default().trim_end_matches(WS).to_string()
}

/// What makes a value unsafe to edit around, if anything.
fn value_problem(value: &str) -> Option<&'static str> {
    let v = value.trim_matches(WS);
    let plain = v.split(" #").next().unwrap_or_default().trim_end_matches(WS);
    match v.chars().next()? {
        '|' | '>' => Some("a block scalar (| or >)"),
        '&' => Some("an anchor (&)"),
        '*' => Some("an alias (*)"),
        '!' => Some("a tag (!)"),
        '{' if !plain.ends_with('}') => Some("a flow mapping ({) continued on the next line"),
        '[' if !plain.ends_with(']') => Some("a flow sequence ([) continued on the next line"),
        q @ ('"' | '\'') if !v[1..].contains(q) => {
            Some("a quoted string continued on the next line")
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: &str = "10.0.0.7:5000";
    const CA: &str = "/etc/rancher/k3s/registry-ca/10.0.0.7_5000.crt";

    fn write(m: Res<Merged>) -> String {
        match m {
            Ok(Merged::Write(t)) => t,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn new_file_and_round_trip() {
        let text = write(merge("", R, CA, false));
        assert_eq!(text, format!("configs:\n  \"{R}\":\n    tls:\n      ca_file: {CA}\n"));
        assert_eq!(merge(&text, R, CA, false), Ok(Merged::Unchanged));
        assert_eq!(remove(&text, R, CA), Ok(Removed::RemoveFile));
    }

    #[test]
    fn keeps_comments_and_layout_and_merges_into_existing_entries() {
        let src = "# k3s registries\nmirrors:\n    docker.io:   # hub\n        endpoint:\n\
                   \x20           - \"https://m.example:5000\"\n\n# credentials\nconfigs:\n    \
                   '10.0.0.7:5000':\n        auth:\n            username: me # robot\n\
                   \x20   other:5000:\n        tls:\n            insecure_skip_verify: true\n";
        let text = write(merge(src, R, CA, false));
        let want = src.replace(
            "username: me # robot\n",
            &format!("username: me # robot\n        tls:\n            ca_file: {CA}\n"),
        );
        assert_eq!(text, want);
        assert_eq!(remove(&text, R, CA), Ok(Removed::Write(src.to_string())));
        // Into an existing tls section, after its other keys.
        let text = write(merge(src, "other:5000", CA, false));
        assert!(
            text.ends_with(&format!("insecure_skip_verify: true\n            ca_file: {CA}\n"))
        );
        assert_eq!(remove(&text, "other:5000", CA), Ok(Removed::Write(src.to_string())));
        // A new entry goes last under configs, before the next top-level key and its comment.
        let src2 = "configs:\n  \"a:1\":\n    auth:\n      username: u\n\n# later\nmirrors: {}\n";
        let text = write(merge(src2, R, CA, false));
        assert!(text.starts_with(&format!(
            "configs:\n  \"a:1\":\n    auth:\n      username: u\n  \"{R}\":\n    tls:\n      \
             ca_file: {CA}\n\n# later\n"
        )));
        assert_eq!(remove(&text, R, CA), Ok(Removed::Write(src2.to_string())));
        // No configs section: appended at the end; comments-only leftovers are kept.
        let text = write(merge("# only a comment", R, CA, false));
        assert_eq!(remove(&text, R, CA), Ok(Removed::Write("# only a comment\n".into())));
    }

    #[test]
    fn conflicts_and_refusals_name_the_line() {
        let other = format!("configs:\n  \"{R}\":\n    tls:\n      ca_file: \"/x.crt\" # mine\n");
        assert_eq!(merge(&other, R, CA, false), Ok(Merged::Conflict("/x.crt".into())));
        let forced = write(merge(&other, R, CA, true));
        assert!(forced.ends_with(&format!("      ca_file: {CA}\n")), "{forced}");
        assert_eq!(remove(&other, R, CA), Ok(Removed::Differs("/x.crt".into())));
        for (src, line, what) in [
            (format!("configs:\n  \"{R}\": {{tls: {{}}}}\n"), 2, "value on the same line"),
            (
                format!("configs:\n  \"{R}\":\n    tls: {{insecure_skip_verify: true}}\n"),
                3,
                "tls has",
            ),
            ("configs: {}\n".to_string(), 1, "configs has its value"),
            ("configs:\n  a:\n    auth: &x\n      u: 1\n".to_string(), 3, "anchor"),
            (
                "configs:\n  a:\n    auth:\n      password: |\n        x\n".to_string(),
                4,
                "block scalar",
            ),
            ("a: 1\n---\nb: 2\n".to_string(), 2, "YAML document"),
            ("configs:\n\t\"a\": 1\n".to_string(), 2, "tab"),
            ("  configs:\n".to_string(), 1, "indented"),
            ("configs:\n  a:\n    <<: *base\n".to_string(), 3, "merge key"),
        ] {
            let err = merge(&src, R, CA, false).unwrap_err();
            assert_eq!(err.line, line, "{src:?}: {err}");
            assert!(err.reason.contains(what), "{src:?}: {err}");
        }
        assert_eq!(merge("a: 1\r\n", R, CA, false).unwrap_err().line, 0);
        // A leading document marker is fine.
        let text = write(merge("---\na: 1\n", R, CA, false));
        assert!(text.starts_with("---\na: 1\nconfigs:\n"), "{text}");
    }
}
