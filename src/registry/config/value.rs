//! The untyped configuration tree and the `REGISTRY_*` environment overrides applied to it.
//!
//! `config.yml` is first read into [`Value`], a plain YAML tree that keeps key order, so that
//! environment overrides can be applied the way the reference registry applies them (before
//! any typing) and so that keys regkit does not know can be listed instead of silently
//! dropped. Typing the tree is `schema.rs`'s job.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A YAML node: scalars keep their YAML type, mappings keep their key order.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `~`, `null` or an empty value.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float (`0.1`, as in `version: 0.1`).
    Float(f64),
    /// Any other scalar.
    Str(String),
    /// A sequence.
    Seq(Vec<Value>),
    /// A mapping; scalar keys are kept as their text.
    Map(Vec<(String, Value)>),
}

impl Value {
    /// The text of a scalar as YAML would print it, or `None` for collections and null.
    pub fn scalar_text(&self) -> Option<String> {
        match self {
            Value::Bool(b) => Some(b.to_string()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(f.to_string()),
            Value::Str(s) => Some(s.clone()),
            Value::Null | Value::Seq(_) | Value::Map(_) => None,
        }
    }

    /// A word for the node's type, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "nothing",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(i64::try_from(v).map(Value::Int).unwrap_or(Value::Str(v.to_string())))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries: Vec<(String, Value)> = Vec::new();
        while let Some((k, v)) = map.next_entry::<Value, Value>()? {
            let key = k.scalar_text().ok_or_else(|| {
                serde::de::Error::custom(format!("mapping keys must be scalars, not {}", k.kind()))
            })?;
            // Later duplicates win, as in Go's YAML decoder.
            entries.retain(|(existing, _)| *existing != key);
            entries.push((key, v));
        }
        Ok(Value::Map(entries))
    }
}

/// Parses YAML text into a tree. An empty document is an empty mapping.
pub fn parse(text: &str) -> Result<Value, serde_saphyr::Error> {
    if text.trim().is_empty() {
        return Ok(Value::Map(Vec::new()));
    }
    let v: Value = serde_saphyr::from_str(text)?;
    Ok(if v == Value::Null { Value::Map(Vec::new()) } else { v })
}

/// Parses an environment variable's value the way the reference registry does: as a YAML
/// document, so `true` is a boolean and `[a, b]` a list. Text that is not valid YAML stays a
/// string; an empty value is an empty string.
pub fn parse_env_value(text: &str) -> Value {
    if text.is_empty() {
        return Value::Str(String::new());
    }
    serde_saphyr::from_str::<Value>(text).unwrap_or_else(|_| Value::Str(text.to_string()))
}

/// The prefix of every environment override.
pub const ENV_PREFIX: &str = "REGISTRY_";

/// Environment variables that start with the prefix but name no configuration key.
const ENV_NOT_KEYS: &[&str] = &["REGISTRY_CONFIGURATION_PATH"];

/// Applies `REGISTRY_*` overrides from `vars` to `root` and returns the names of the
/// variables applied.
///
/// Rules (those of the reference registry): the name after the prefix is the key path in
/// upper case joined with `_` (`REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY`); each part matches
/// an existing key case-insensitively, or creates a lower-case key; a numeric part indexes a
/// list (`REGISTRY_HTTP_TLS_CLIENTCAS_0`); a scalar met on the way (`auth: htpasswd`) becomes
/// a mapping holding that name. Variables apply in name order, so a section set whole
/// (`REGISTRY_AUTH=htpasswd`) is refined by longer names after it.
pub fn apply_env<I>(root: &mut Value, vars: I) -> Vec<String>
where
    I: IntoIterator<Item = (String, String)>,
{
    let mut vars: Vec<(String, String)> = vars
        .into_iter()
        .filter(|(k, _)| {
            k.starts_with(ENV_PREFIX) && k.len() > ENV_PREFIX.len() && !ENV_NOT_KEYS.contains(&&**k)
        })
        .collect();
    vars.sort();
    let mut applied = Vec::new();
    for (name, raw) in vars {
        let parts: Vec<&str> = name[ENV_PREFIX.len()..].split('_').collect();
        if parts.iter().any(|p| p.is_empty()) {
            continue;
        }
        set_path(root, &parts, parse_env_value(&raw));
        applied.push(name);
    }
    applied
}

fn set_path(node: &mut Value, parts: &[&str], value: Value) {
    let Some((first, rest)) = parts.split_first() else {
        *node = value;
        return;
    };
    let index = first.parse::<usize>().ok();
    // Make the node a container that `first` can address.
    match node {
        Value::Map(_) => {}
        Value::Seq(_) if index.is_some() => {}
        Value::Str(s) if !s.is_empty() => {
            *node = Value::Map(vec![(s.clone(), Value::Null)]);
        }
        _ => {
            *node = if index.is_some() { Value::Seq(Vec::new()) } else { Value::Map(Vec::new()) };
        }
    }
    match node {
        Value::Seq(items) => {
            // `index` is Some here: a Seq is only kept or made when the part is numeric.
            let i = index.unwrap_or_default();
            if items.len() <= i {
                items.resize(i + 1, Value::Null);
            }
            set_path(&mut items[i], rest, value);
        }
        Value::Map(entries) => {
            let pos = match entries.iter().position(|(k, _)| k.eq_ignore_ascii_case(first)) {
                Some(pos) => pos,
                None => {
                    entries.push((first.to_ascii_lowercase(), Value::Null));
                    entries.len() - 1
                }
            };
            set_path(&mut entries[pos].1, rest, value);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
        let Some((first, rest)) = path.split_first() else { return Some(v) };
        match v {
            Value::Map(entries) => {
                entries.iter().find(|(k, _)| k == first).and_then(|(_, v)| get(v, rest))
            }
            Value::Seq(items) => items.get(first.parse::<usize>().ok()?).and_then(|v| get(v, rest)),
            _ => None,
        }
    }

    #[test]
    fn parses_scalars_with_their_yaml_types() {
        let v = parse("version: 0.1\nhttp:\n  addr: :5000\n  draintimeout: 10s\n  count: 12\n  b: true\n  e:\n  l: [a, b]\n").unwrap();
        assert_eq!(get(&v, &["version"]), Some(&Value::Float(0.1)));
        assert_eq!(get(&v, &["http", "addr"]), Some(&Value::Str(":5000".into())));
        assert_eq!(get(&v, &["http", "draintimeout"]), Some(&Value::Str("10s".into())));
        assert_eq!(get(&v, &["http", "count"]), Some(&Value::Int(12)));
        assert_eq!(get(&v, &["http", "b"]), Some(&Value::Bool(true)));
        assert_eq!(get(&v, &["http", "e"]), Some(&Value::Null));
        assert_eq!(get(&v, &["http", "l", "1"]), Some(&Value::Str("b".into())));
        assert_eq!(parse("").unwrap(), Value::Map(vec![]));
    }

    #[test]
    fn env_overrides_follow_the_reference_rules() {
        let mut v = parse(
            "storage:\n  filesystem:\n    rootdirectory: /old\nhttp:\n  addr: :5000\n  headers:\n    X-Frame-Options: [deny]\n",
        )
        .unwrap();
        let vars = [
            ("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", "/new"),
            ("REGISTRY_HTTP_ADDR", "127.0.0.1:6000"),
            ("REGISTRY_AUTH", "htpasswd"),
            ("REGISTRY_AUTH_HTPASSWD_PATH", "/auth/htpasswd"),
            ("REGISTRY_HTTP_TLS_CLIENTCAS_1", "/b.pem"),
            ("REGISTRY_HTTP_TLS_CLIENTCAS_0", "/a.pem"),
            ("REGISTRY_STORAGE_DELETE_ENABLED", "true"),
            ("REGISTRY_HTTP_HEADERS_X-FRAME-OPTIONS", "[sameorigin]"),
            ("REGISTRY_CONFIGURATION_PATH", "/etc/x.yml"),
            ("HOME", "/root"),
        ];
        let applied = apply_env(&mut v, vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        assert_eq!(applied.len(), 8, "{applied:?}");
        let s = |x: &str| Value::Str(x.to_string());
        assert_eq!(get(&v, &["storage", "filesystem", "rootdirectory"]), Some(&s("/new")));
        assert_eq!(get(&v, &["http", "addr"]), Some(&s("127.0.0.1:6000")));
        assert_eq!(get(&v, &["auth", "htpasswd", "path"]), Some(&s("/auth/htpasswd")));
        assert_eq!(get(&v, &["http", "tls", "clientcas", "0"]), Some(&s("/a.pem")));
        assert_eq!(get(&v, &["http", "tls", "clientcas", "1"]), Some(&s("/b.pem")));
        assert_eq!(get(&v, &["storage", "delete", "enabled"]), Some(&Value::Bool(true)));
        // An existing key is matched case-insensitively and keeps its spelling.
        assert_eq!(get(&v, &["http", "headers", "X-Frame-Options", "0"]), Some(&s("sameorigin")));
        assert_eq!(get(&v, &["configuration"]), None);
    }

    #[test]
    fn env_values_are_yaml_scalars() {
        assert_eq!(parse_env_value("5000"), Value::Int(5000));
        assert_eq!(parse_env_value("false"), Value::Bool(false));
        assert_eq!(parse_env_value(":5000"), Value::Str(":5000".into()));
        assert_eq!(parse_env_value("Registry Realm"), Value::Str("Registry Realm".into()));
        assert_eq!(parse_env_value(""), Value::Str(String::new()));
    }
}
