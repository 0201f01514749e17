//! Reading typed settings out of the untyped tree while keeping track of every key path, so
//! that a wrong type is reported as `http.draintimeout: expected a duration like 10s` and
//! every key left unread at the end is reported as unsupported.

use std::path::PathBuf;
use std::time::Duration;

use super::Error;
use super::duration;
use super::value::Value;

/// A mapping being read: keys are taken out as they are understood; what remains is unknown.
#[derive(Debug)]
pub(super) struct Section {
    path: String,
    entries: Vec<(String, Value)>,
}

/// One setting taken out of a section: its full key path and its value.
#[derive(Debug)]
pub(super) struct Field {
    pub path: String,
    pub value: Value,
}

impl Section {
    /// The tree's root.
    pub fn root(value: Value) -> Result<Self, Error> {
        match value {
            Value::Map(entries) => Ok(Section { path: String::new(), entries }),
            other => Err(Error::Type {
                key: "(top level)".into(),
                expected: "a mapping of settings",
                found: other.kind(),
            }),
        }
    }

    /// This section's key path (`http.tls`).
    pub fn path(&self) -> &str {
        &self.path
    }

    fn child_path(&self, key: &str) -> String {
        if self.path.is_empty() { key.to_string() } else { format!("{}.{key}", self.path) }
    }

    /// Takes `key` out; `None` when absent, null or the empty string (which is how an empty
    /// `REGISTRY_*` variable unsets a key, as with the reference's zero values).
    pub fn take(&mut self, key: &str) -> Option<Field> {
        let pos = self.entries.iter().position(|(k, _)| k == key)?;
        let (k, value) = self.entries.remove(pos);
        if value == Value::Null || value == Value::Str(String::new()) {
            return None;
        }
        Some(Field { path: self.child_path(&k), value })
    }

    /// Takes `key` as a sub-section; an absent or null key is an empty section.
    pub fn section(&mut self, key: &str) -> Result<Section, Error> {
        let path = self.child_path(key);
        match self.take(key) {
            None => Ok(Section { path, entries: Vec::new() }),
            Some(f) => f.into_section(),
        }
    }

    /// Takes `key` as a section that may also be written as just a name: `auth: htpasswd`
    /// or `storage: filesystem` mean `{htpasswd: {}}` / `{filesystem: {}}`, as in the reference.
    pub fn named_section(&mut self, key: &str) -> Result<Section, Error> {
        let path = self.child_path(key);
        match self.take(key) {
            None => Ok(Section { path, entries: Vec::new() }),
            Some(Field { path, value: Value::Str(name) }) if !name.is_empty() => {
                Ok(Section { path, entries: vec![(name, Value::Null)] })
            }
            Some(f) => f.into_section(),
        }
    }

    /// Names of the keys not taken yet, in file order.
    pub fn keys(&self) -> Vec<String> {
        self.entries.iter().map(|(k, _)| k.clone()).collect()
    }

    /// Records every key left in this section as unsupported. A leftover mapping whose
    /// `enabled` is false is skipped (turning off a feature regkit lacks is no loss), and one
    /// with a single key is named down to that key (`storage.cache.blobdescriptor`).
    pub fn finish(self, unsupported: &mut Vec<String>) {
        for (key, value) in &self.entries {
            note_unsupported(self.child_path(key), value, unsupported);
        }
    }
}

fn note_unsupported(path: String, value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Map(entries) => {
            let disabled = entries.iter().any(|(k, v)| k == "enabled" && *v == Value::Bool(false));
            if disabled {
                return;
            }
            if let [(k, v)] = entries.as_slice() {
                note_unsupported(format!("{path}.{k}"), v, out);
            } else if !entries.is_empty() {
                out.push(path);
            }
        }
        Value::Null => {}
        _ => out.push(path),
    }
}

impl Field {
    fn wrong(&self, expected: &'static str) -> Error {
        Error::Type { key: self.path.clone(), expected, found: self.value.kind() }
    }

    /// The field as a mapping to read further.
    pub fn into_section(self) -> Result<Section, Error> {
        match self.value {
            Value::Map(entries) => Ok(Section { path: self.path, entries }),
            Value::Null => Ok(Section { path: self.path, entries: Vec::new() }),
            _ => Err(self.wrong("a mapping")),
        }
    }

    /// Any scalar as text (Go's YAML decoder turns `5000` into "5000" for a string field).
    pub fn string(&self) -> Result<String, Error> {
        self.value.scalar_text().ok_or_else(|| self.wrong("a string"))
    }

    /// A path (any non-empty scalar).
    pub fn path_buf(&self) -> Result<PathBuf, Error> {
        let s = self.string()?;
        if s.is_empty() {
            return Err(Error::Invalid { key: self.path.clone(), message: "empty path".into() });
        }
        Ok(PathBuf::from(s))
    }

    /// A boolean (`true`/`false`; the strings "true"/"false" too, as env values may be).
    pub fn bool(&self) -> Result<bool, Error> {
        match &self.value {
            Value::Bool(b) => Ok(*b),
            Value::Str(s) if s.eq_ignore_ascii_case("true") => Ok(true),
            Value::Str(s) if s.eq_ignore_ascii_case("false") => Ok(false),
            _ => Err(self.wrong("true or false")),
        }
    }

    /// A non-negative integer.
    pub fn u64(&self) -> Result<u64, Error> {
        match &self.value {
            Value::Int(i) if *i >= 0 => Ok(*i as u64),
            Value::Str(s) => s.trim().parse().map_err(|_| self.wrong("a whole number")),
            _ => Err(self.wrong("a whole number")),
        }
    }

    /// A Go-style duration string (`10s`, `168h`, `1h30m`).
    pub fn duration(&self) -> Result<Duration, Error> {
        match &self.value {
            Value::Str(s) => duration::parse(s).ok_or_else(|| self.wrong("a duration like 10s")),
            Value::Int(0) => Ok(Duration::ZERO),
            _ => Err(self.wrong("a duration like 10s")),
        }
    }

    /// A list of strings; a single scalar is a one-item list.
    pub fn string_list(&self) -> Result<Vec<String>, Error> {
        match &self.value {
            Value::Seq(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    v.scalar_text().ok_or_else(|| Error::Type {
                        key: format!("{}[{i}]", self.path),
                        expected: "a string",
                        found: v.kind(),
                    })
                })
                .collect(),
            v => v.scalar_text().map(|s| vec![s]).ok_or_else(|| self.wrong("a list of strings")),
        }
    }
}

impl Field {
    /// An error for a value of the right type but not one of the accepted ones.
    pub fn wrong_value(&self, expected: &str) -> Error {
        let shown = self.value.scalar_text().unwrap_or_else(|| self.value.kind().to_string());
        Error::Invalid {
            key: self.path.clone(),
            message: format!("expected {expected}, not {shown:?}"),
        }
    }
}
