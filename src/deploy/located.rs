//! Key paths and line numbers for descriptor errors.
//!
//! serde-saphyr reports a position for parse errors but not which key it belongs to, and
//! semantic checks run after parsing, when positions are gone. So the text is first read into
//! a small tree of keys with their positions ([`Located`]); an error at a position is then
//! named by the key whose node is nearest before it, and a semantic error about a key path is
//! given the line of that key (or of its nearest ancestor present in the file, when the value
//! came from a default). Every message reads `FILE:LINE: KEY: what is wrong`.
//!
//! The tree also records what each scalar *is* in YAML (a boolean, a number, a string, null),
//! because serde-saphyr coerces: it reads `"yes"` into a bool, `"5000"` into a number and an
//! unquoted `5` into a string. [`Located::check_types`] compares those kinds with the values
//! the descriptor was deserialized to, so a quoted number or an unquoted one where a string
//! belongs is refused with its key and line instead of being taken.

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{MessageFormatter, Spanned, UserMessageFormatter};

use super::Error;

/// A semantic problem with one key of the descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// Dotted key path, list items as `[i]`: `storage.s3.bucket`, `hosts[1]`.
    pub key: String,
    /// What is wrong.
    pub message: String,
    /// The same problem put in terms of `regkit init`'s flags, when the descriptor wording
    /// would mislead there (e.g. "pass --host NAME or --no-ingress").
    pub flag_message: Option<String>,
}

impl Invalid {
    /// A problem with `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Invalid { key: key.into(), message: message.into(), flag_message: None }
    }

    /// The problem as `regkit init` should word it, naming its flags.
    pub fn with_flag_message(mut self, message: impl Into<String>) -> Self {
        self.flag_message = Some(message.into());
        self
    }
}

/// What a YAML scalar is, as a YAML 1.2 reader resolves it.
#[derive(Debug, Clone, PartialEq)]
enum Scalar {
    Bool,
    Number(String),
    Str(String),
    Null,
}

/// One key or value of the document.
#[derive(Debug)]
struct Node {
    path: String,
    line: u64,
    column: u64,
    /// For scalar values: what the scalar is.
    scalar: Option<Scalar>,
}

/// The key paths of a YAML document with the line and column of each key and value.
#[derive(Debug)]
pub struct Located {
    origin: PathBuf,
    /// Every key and every value, in document order.
    nodes: Vec<Node>,
}

impl Located {
    /// Reads the key tree of `text`; syntax errors come back with their line.
    pub fn parse(text: &str, origin: &Path) -> Result<Self, Error> {
        let mut located = Located { origin: origin.to_path_buf(), nodes: Vec::new() };
        let tree: Spanned<Tree> = match serde_saphyr::from_str(text) {
            Ok(t) => t,
            Err(e) => {
                let line = e.location().map(|l| l.line()).filter(|l| *l > 0);
                return Err(located.error(line, None, message_of(&e).into_owned()));
            }
        };
        located.walk(String::new(), &tree);
        Ok(located)
    }

    /// Deserializes `text` into `T`, naming the key and line of any error.
    pub fn deserialize<'de, T: Deserialize<'de>>(&self, text: &'de str) -> Result<T, Error> {
        serde_saphyr::from_str(text).map_err(|e| {
            let pos = e.location().map(|l| (l.line(), l.column())).filter(|p| p.0 > 0);
            let key = pos.and_then(|p| self.key_at(p));
            self.error(pos.map(|p| p.0), key, message_of(&e).into_owned())
        })
    }

    /// Checks that every scalar in the document has the YAML type of the value it was read
    /// into (`value`: the deserialized result as JSON): a bool from `true`/`false`, a number
    /// from an unquoted number, a string from a string, null from null.
    pub fn check_types(&self, value: &serde_json::Value) -> Result<(), Error> {
        use serde_json::Value;
        for node in &self.nodes {
            let (Some(found), Some(want)) = (&node.scalar, lookup(value, &node.path)) else {
                continue;
            };
            let problem = match (want, found) {
                (Value::Bool(_), Scalar::Bool)
                | (Value::Number(_), Scalar::Number(_))
                | (Value::String(_), Scalar::Str(_))
                | (Value::Null, Scalar::Null) => continue,
                (Value::Bool(_), Scalar::Str(s)) => {
                    format!("expected true or false, not the string {s:?} (write it unquoted)")
                }
                (Value::Number(_), Scalar::Str(s)) => {
                    format!("expected a number, not the string {s:?} (write it unquoted)")
                }
                (Value::String(_), Scalar::Number(n)) => {
                    format!("expected a string, not the number {n} (quote it: \"{n}\")")
                }
                (Value::String(_), Scalar::Bool) => {
                    "expected a string, not a boolean (quote it)".to_string()
                }
                (Value::Bool(_), _) => "expected true or false".to_string(),
                (Value::Number(_), _) => "expected a number".to_string(),
                (Value::String(_), _) => "expected a string".to_string(),
                _ => "wrong type".to_string(),
            };
            return Err(self.error(Some(node.line), Some(node.path.clone()), problem));
        }
        Ok(())
    }

    /// Turns a semantic problem into an error carrying the key's line.
    pub fn invalid(&self, problem: Invalid) -> Error {
        let line = self.line_of(&problem.key);
        self.error(line, Some(problem.key), problem.message)
    }

    /// The line of `key`, or of its nearest ancestor that is in the document.
    pub fn line_of(&self, key: &str) -> Option<u64> {
        let mut k = key;
        loop {
            if let Some(node) = self.nodes.iter().find(|n| n.path == k) {
                return Some(node.line);
            }
            let cut = k.rfind(['.', '['])?;
            k = &k[..cut];
        }
    }

    fn key_at(&self, pos: (u64, u64)) -> Option<String> {
        self.nodes
            .iter()
            .filter(|n| (n.line, n.column) <= pos)
            .max_by_key(|n| (n.line, n.column))
            .map(|n| n.path.clone())
            .filter(|p| !p.is_empty())
    }

    fn error(&self, line: Option<u64>, key: Option<String>, message: String) -> Error {
        Error::Descriptor { path: self.origin.clone(), line, key, message }
    }

    fn walk(&mut self, path: String, node: &Spanned<Tree>) {
        let loc = &node.referenced;
        let scalar = match &node.value {
            Tree::Scalar(s) => Some(s.clone()),
            _ => None,
        };
        self.nodes.push(Node {
            path: path.clone(),
            line: loc.line(),
            column: loc.column(),
            scalar,
        });
        match &node.value {
            Tree::Map(entries) => {
                for (k, v) in entries {
                    let child = if path.is_empty() {
                        k.value.clone()
                    } else {
                        format!("{path}.{}", k.value)
                    };
                    let (line, column) = (k.referenced.line(), k.referenced.column());
                    self.nodes.push(Node { path: child.clone(), line, column, scalar: None });
                    self.walk(child, v);
                }
            }
            Tree::Seq(items) => {
                for (i, v) in items.iter().enumerate() {
                    self.walk(format!("{path}[{i}]"), v);
                }
            }
            Tree::Scalar(_) => {}
        }
    }
}

/// The value at dotted key path `path` (`kubernetes.ingress.host`, `hosts[1]`) in `v`.
fn lookup<'a>(v: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    let mut cur = v;
    for part in path.split('.') {
        let (key, indexes) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            cur = cur.get(key)?;
        }
        for index in indexes.split(['[', ']']).filter(|s| !s.is_empty()) {
            cur = cur.get(index.parse::<usize>().ok()?)?;
        }
    }
    Some(cur)
}

/// serde-saphyr's terse type errors, and how a user would put them.
const PLAINER: &[(&str, &str)] = &[
    ("invalid u16", "expected a whole number from 0 to 65535"),
    ("invalid u32", "expected a whole number"),
    ("invalid boolean", "expected true or false"),
    ("expected sequence start", "expected a list"),
    ("expected mapping start", "expected a map of keys and values"),
    ("expected string scalar", "expected a string"),
];

/// The bare message of a serde-saphyr error, without location or snippet, made printable.
fn message_of(e: &serde_saphyr::Error) -> Cow<'_, str> {
    let msg = UserMessageFormatter.format_message(e.without_snippet());
    if let Some((_, plain)) = PLAINER.iter().find(|(terse, _)| msg == *terse) {
        return Cow::Borrowed(plain);
    }
    if msg.chars().any(char::is_control) {
        Cow::Owned(msg.chars().flat_map(char::escape_debug).collect())
    } else {
        msg
    }
}

/// Just enough of a YAML document to know where each key is.
#[derive(Debug)]
enum Tree {
    Map(Vec<(Spanned<String>, Spanned<Tree>)>),
    Seq(Vec<Spanned<Tree>>),
    Scalar(Scalar),
}

impl<'de> Deserialize<'de> for Tree {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TreeVisitor)
    }
}

struct TreeVisitor;

impl<'de> Visitor<'de> for TreeVisitor {
    type Value = Tree;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Tree, E> {
        Ok(Tree::Scalar(Scalar::Bool))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Tree, E> {
        Ok(Tree::Scalar(Scalar::Number(v.to_string())))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Tree, E> {
        Ok(Tree::Scalar(Scalar::Number(v.to_string())))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Tree, E> {
        Ok(Tree::Scalar(Scalar::Number(v.to_string())))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Tree, E> {
        Ok(Tree::Scalar(Scalar::Number(v.to_string())))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Tree, E> {
        Ok(Tree::Scalar(Scalar::Number(v.to_string())))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Tree, E> {
        Ok(Tree::Scalar(Scalar::Str(v.to_string())))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Tree, E> {
        Ok(Tree::Scalar(Scalar::Str(String::from_utf8_lossy(v).into_owned())))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Tree, E> {
        Ok(Tree::Scalar(Scalar::Null))
    }
    fn visit_none<E: de::Error>(self) -> Result<Tree, E> {
        Ok(Tree::Scalar(Scalar::Null))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Tree, D::Error> {
        d.deserialize_any(TreeVisitor)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Tree, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Tree>>()? {
            items.push(item);
        }
        Ok(Tree::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tree, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<KeyText>>()? {
            let value = map.next_value::<Spanned<Tree>>()?;
            let key =
                Spanned { value: key.value.0, referenced: key.referenced, defined: key.defined };
            entries.push((key, value));
        }
        Ok(Tree::Map(entries))
    }
}

/// A mapping key of any scalar type, as text.
struct KeyText(String);

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KeyText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a scalar key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<KeyText, E> {
                Ok(KeyText("null".to_string()))
            }
        }
        d.deserialize_any(V)
    }
}
