//! YAML-safe scalars for the templates: every value a template inserts goes through
//! [`yaml_scalar`] (the `{{yaml v}}` helper) or [`yaml_block`] (the `{{yaml_block v N}}`
//! helper), so no value can change the structure of the document it lands in. Values inside
//! a YAML comment go through [`comment_text`] (`{{comment v}}`: nothing can end the comment
//! line), and words of a shell command the README shows through [`shell_word`] (`{{sh v}}`).
//!
//! A string is written plain only when it is clearly harmless: it starts with a letter or `/`,
//! holds only `[A-Za-z0-9._/-]`, and is not one of the words YAML 1.1 or 1.2 resolves to a
//! boolean or null (`yes`, `off`, `null`, ... in any case). Everything else is double-quoted
//! with escapes for `\`, `"`, and every character YAML does not allow raw. Non-ASCII text that
//! YAML allows raw is kept as it is, so readable names stay readable. Numbers and booleans are
//! written as themselves; maps, lists and missing values are refused (templates iterate with
//! `#each` instead), which makes a template mistake an error rather than a silently wrong file.

use handlebars::{
    Context, Handlebars, Helper, HelperDef, Output, RenderContext, RenderError, RenderErrorReason,
    ScopedJson,
};
use serde_json::Value;

/// Words that some YAML resolver (1.1 as in PyYAML and Go's yaml.v2, or 1.2) reads as a
/// boolean or null instead of a string; compared case-insensitively.
const RESERVED_WORDS: &[&str] =
    &["y", "n", "yes", "no", "on", "off", "true", "false", "null", "nil", "none", "~"];

/// Returns `s` as a YAML scalar that every YAML 1.1 and 1.2 parser reads back as the same
/// string: plain when that is unambiguous, double-quoted otherwise.
pub fn yaml_scalar(s: &str) -> String {
    if is_plain_safe(s) { s.to_string() } else { double_quoted(s) }
}

/// Returns `s` as a double-quoted YAML scalar with every character YAML does not allow raw
/// written as an escape.
pub fn double_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if is_printable_raw(c) => out.push(c),
            c => {
                // Non-printable, or printable but treated as a line break by YAML 1.1
                // (U+0085, U+2028, U+2029), or a byte-order mark.
                let n = c as u32;
                if n <= 0xFFFF {
                    out.push_str(&format!("\\u{n:04X}"));
                } else {
                    out.push_str(&format!("\\U{n:08X}"));
                }
            }
        }
    }
    out.push('"');
    out
}

/// Returns `s` as the value part of `key: VALUE` where the key sits at column `indent - 2`:
/// a literal block scalar (`|`, `|-` or `|+` followed by lines indented by `indent` spaces)
/// when the text allows it, else a double-quoted scalar. Used for whole files embedded in a
/// manifest (the registry's config.yml in the ConfigMap), which stay readable that way.
pub fn yaml_block(s: &str, indent: usize) -> String {
    let block_safe = !s.is_empty()
        && s.chars().all(|c| c == '\n' || (c != '\r' && c != '\t' && is_printable_raw(c)))
        && !s.starts_with([' ', '\n'])
        && s.lines().all(|l| !l.ends_with(' '));
    if !block_safe {
        return double_quoted(s);
    }
    let body = s.trim_end_matches('\n');
    let trailing = s.len() - body.len();
    let chomp = match trailing {
        0 => "-",
        1 => "",
        _ => "+",
    };
    let pad = " ".repeat(indent);
    let mut out = format!("|{chomp}\n");
    for line in s.split_inclusive('\n') {
        if line != "\n" {
            out.push_str(&pad);
        }
        out.push_str(line);
    }
    if trailing == 0 {
        out.push('\n');
    }
    // The caller's template supplies the line break after the value.
    out.pop();
    out
}

/// Returns `s` for the inside of a YAML `#` comment: every line break and every character YAML
/// does not allow raw is written as an escape (`\n`, `\u2028`), so the text cannot end the
/// comment line and start a key; everything else stays readable.
pub fn comment_text(s: &str) -> String {
    let quoted = double_quoted(s);
    // The body of the double-quoted form, with `"` and `\` back as themselves.
    let body = &quoted[1..quoted.len() - 1];
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('\\', Some('"')) | ('\\', Some('\\')) => {
                out.push(chars.next().unwrap_or(c));
            }
            _ => out.push(c),
        }
    }
    out
}

/// Returns `s` as one word of a POSIX shell command: as it is when it holds only characters
/// no shell treats specially, else in single quotes (a `'` inside written as `'\''`).
pub fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '.' | '_' | '/' | '-' | ':' | '@' | '=' | '+' | ',')
        });
    if plain { s.to_string() } else { format!("'{}'", s.replace('\'', "'\\''")) }
}

/// A handlebars registry as every regkit template is rendered with: strict mode (a missing
/// value is an error), no HTML escaping, and the YAML helpers registered.
pub fn handlebars() -> Handlebars<'static> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_escape_fn(handlebars::no_escape);
    register_helpers(&mut hb);
    hb
}

/// Registers the `yaml`, `yaml_opt`, `yaml_string`, `yaml_block`, `comment` and `sh` helpers
/// on `hb`.
pub fn register_helpers(hb: &mut Handlebars<'_>) {
    hb.register_helper("yaml", Box::new(ScalarHelper(|h| scalar_param(h, 0))));
    hb.register_helper("yaml_opt", Box::new(ScalarHelper(yaml_opt)));
    hb.register_helper("yaml_string", Box::new(ScalarHelper(|h| Ok(yaml_scalar(&text_param(h)?)))));
    hb.register_helper("yaml_block", Box::new(YamlBlockHelper));
    hb.register_helper("comment", Box::new(ScalarHelper(|h| Ok(comment_text(&text_param(h)?)))));
    hb.register_helper("sh", Box::new(ScalarHelper(|h| Ok(shell_word(&text_param(h)?)))));
}

/// A helper that writes one scalar, computed from the helper's parameters by `.0`:
/// `{{yaml v}}` (one YAML scalar), `{{yaml_opt v}}` (the same, or `null`), `{{yaml_string v}}`
/// (a string, number or boolean as a YAML string: `5` becomes `"5"`), `{{comment v}}` and
/// `{{sh v}}` (see [`comment_text`], [`shell_word`]).
struct ScalarHelper(fn(&Helper<'_>) -> Result<String, RenderError>);

impl HelperDef for ScalarHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        Ok(ScopedJson::Derived(Value::String((self.0)(h)?)))
    }
}

/// `{{yaml_opt v}}`: like `yaml`, but a null value is written as `null`.
fn yaml_opt(h: &Helper<'_>) -> Result<String, RenderError> {
    match param(h, 0)?.value() {
        Value::Null => Ok("null".to_string()),
        _ => scalar_param(h, 0),
    }
}

/// The first parameter as text: a string, number or boolean.
fn text_param(h: &Helper<'_>) -> Result<String, RenderError> {
    match param(h, 0)?.value() {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(not_a_scalar(h, other)),
    }
}

/// `{{yaml_block v N}}`: a block scalar indented by N spaces.
struct YamlBlockHelper;

impl HelperDef for YamlBlockHelper {
    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> Result<(), RenderError> {
        let text = match param(h, 0)?.value() {
            Value::String(s) => s.clone(),
            other => return Err(not_a_scalar(h, other)),
        };
        let indent = param(h, 1)?
            .value()
            .as_u64()
            .ok_or_else(|| RenderErrorReason::InvalidParamType("indent: a number"))?;
        let indent = usize::try_from(indent)
            .map_err(|_| RenderErrorReason::InvalidParamType("indent: a small number"))?;
        out.write(&yaml_block(&text, indent))?;
        Ok(())
    }
}

fn param<'a, 'rc>(
    h: &'a Helper<'rc>,
    idx: usize,
) -> Result<&'a handlebars::PathAndJson<'rc>, RenderError> {
    let p = h.param(idx).ok_or(RenderErrorReason::ParamNotFoundForIndex("yaml", idx))?;
    if p.is_value_missing() {
        let path = p.relative_path().cloned().unwrap_or_default();
        return Err(RenderErrorReason::MissingVariable(Some(path)).into());
    }
    Ok(p)
}

fn scalar_param(h: &Helper<'_>, idx: usize) -> Result<String, RenderError> {
    match param(h, idx)?.value() {
        Value::String(s) => Ok(yaml_scalar(s)),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(not_a_scalar(h, other)),
    }
}

fn not_a_scalar(h: &Helper<'_>, v: &Value) -> RenderError {
    let what = match v {
        Value::Null => "null",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
        _ => "a scalar",
    };
    RenderErrorReason::Other(format!("helper {} got {what}, expected a string", h.name())).into()
}

fn is_plain_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else { return false };
    if !(first.is_ascii_alphabetic() || first == '/') {
        return false;
    }
    if !s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-')) {
        return false;
    }
    !RESERVED_WORDS.iter().any(|w| w.eq_ignore_ascii_case(s))
}

/// True for characters YAML allows unescaped inside a double-quoted scalar without any
/// parser reading them as a line break (the printable set of YAML 1.2 section 5.1, minus
/// NEL, LS, PS and the BOM).
fn is_printable_raw(c: char) -> bool {
    matches!(c as u32,
        0x20..=0x7E | 0xA0..=0x2027 | 0x202A..=0xD7FF | 0xE000..=0xFEFE | 0xFF00..=0xFFFD
        | 0x10000..=0x10FFFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_only_when_unambiguous() {
        assert_eq!(yaml_scalar("registry.example.com"), "registry.example.com");
        assert_eq!(yaml_scalar("/var/lib/registry"), "/var/lib/registry");
        for s in ["yes", "No", "ON", "null", "~", "5000", "1e3", "0x1F", ".inf", "-x", "", "a b"] {
            assert!(yaml_scalar(s).starts_with('"'), "{s:?} must be quoted");
        }
    }

    #[test]
    fn yaml_string_writes_numbers_as_strings() {
        let hb = handlebars();
        let data = serde_json::json!({ "n": 5368709120_u64, "b": true, "s": "x y" });
        let text = hb.render_template(
            "n: {{yaml_string n}}\nb: {{yaml_string b}}\ns: {{yaml_string s}}\n",
            &data,
        );
        assert_eq!(text.unwrap(), "n: \"5368709120\"\nb: \"true\"\ns: \"x y\"\n");
    }

    #[test]
    fn escapes_what_yaml_cannot_hold_raw() {
        assert_eq!(double_quoted("a\"b\\c\nd"), r#""a\"b\\c\nd""#);
        assert_eq!(double_quoted("\u{7}\u{85}\u{2028}\u{feff}"), r#""\u0007\u0085\u2028\uFEFF""#);
        assert_eq!(double_quoted("镜像"), "\"镜像\"");
    }

    #[test]
    fn comments_cannot_be_ended_and_shell_words_stay_one_word() {
        assert_eq!(comment_text("a\nkey: v"), "a\\nkey: v");
        assert_eq!(comment_text("x\u{2028}y\u{85}\r\"q\" \\"), "x\\u2028y\\u0085\\r\"q\" \\");
        assert_eq!(comment_text("镜像 🐳"), "镜像 🐳");
        assert_eq!(shell_word("admin"), "admin");
        assert_eq!(shell_word("a b"), "'a b'");
        assert_eq!(shell_word("it's $(x)"), "'it'\\''s $(x)'");
        assert_eq!(shell_word(""), "''");
    }

    #[test]
    fn block_scalars_chomp_exactly() {
        assert_eq!(yaml_block("a: 1\nb: 2\n", 4), "|\n    a: 1\n    b: 2");
        assert_eq!(yaml_block("a", 2), "|-\n  a");
        assert_eq!(yaml_block("a\n\n", 2), "|+\n  a\n");
        assert_eq!(yaml_block("a\n\nb\n", 2), "|\n  a\n\n  b");
        assert!(yaml_block(" leading", 2).starts_with('"'));
        assert!(yaml_block("tab\there", 2).starts_with('"'));
    }
}
