//! k3s (and RKE2 agents): `/etc/rancher/k3s/registries.yaml` maps each registry to its TLS
//! settings under `configs."<host[:port]>".tls.ca_file`, read when k3s starts. regkit merges
//! that one key into whatever the file already holds, editing the text in place
//! ([`super::k3s_text`]): mirrors, auth, other registries, comments and layout stay as they
//! were. It keeps its own copy of the CA under `etc/rancher/k3s/registry-ca/`, so the k3s
//! entry does not depend on another client being selected. Uninstall removes only the
//! `ca_file` key when it still points at that copy, and the parents it leaves empty.

use std::path::{Path, PathBuf};

use super::k3s_text::{self, Merged, Removed, Unsupported};
use super::yaml::Value;
use super::{Error, RegistryHost};

/// The registries file, relative to the root.
pub const YAML_PATH: &str = "etc/rancher/k3s/registries.yaml";
/// regkit's directory of CA copies for k3s, relative to the root.
pub const CA_DIR: &str = "etc/rancher/k3s/registry-ca";

/// The CA copy, relative to the root.
pub fn ca_path(registry: &RegistryHost) -> PathBuf {
    PathBuf::from(CA_DIR).join(format!("{}.crt", registry.flat()))
}

/// The `ca_file` value: the CA copy's path on the node.
pub fn ca_file(registry: &RegistryHost) -> String {
    Path::new("/").join(ca_path(registry)).display().to_string()
}

/// The result of merging into `registries.yaml`.
#[derive(Debug, PartialEq)]
pub enum Merge {
    /// The key is already there with this value.
    Unchanged,
    /// New file text.
    Write(String),
    /// The registry already has another `ca_file` (which is returned).
    Conflict(String),
}

/// Adds `configs."<registry>".tls.ca_file` to `existing` (the file's text, if any), editing
/// the text in place ([`super::k3s_text`]) so comments and layout stay. An existing different
/// `ca_file` is a [`Merge::Conflict`] unless `force`. The edit is checked against the parsed
/// document: the new text must parse to the old document with exactly that key set.
pub fn merge(existing: Option<&str>, registry: &RegistryHost, force: bool) -> Result<Merge, Error> {
    let doc = parse(existing)?;
    let (auth, want) = (registry.authority(), ca_file(registry));
    let edited = k3s_text::merge(existing.unwrap_or(""), &auth, &want, force)
        .map_err(|u| not_editable(&u, &format!("add configs.\"{auth}\".tls.ca_file: {want}")))?;
    match edited {
        Merged::Unchanged => {
            let have = ca_file_of(&doc, &auth).and_then(Value::as_str).map(str::to_string);
            check(have.as_deref() == Some(want.as_str()), &auth)?;
            Ok(Merge::Unchanged)
        }
        Merged::Conflict(other) => Ok(Merge::Conflict(other)),
        Merged::Write(text) => {
            let mut expected = doc;
            let tls = tls_map(&mut expected, &auth)?;
            let i = Value::entry(tls, "ca_file");
            tls[i].1 = Value::Str(want);
            check(same(&parse(Some(&text))?, &expected), &auth)?;
            Ok(Merge::Write(text))
        }
    }
}

/// The result of taking regkit's key out of `registries.yaml`.
#[derive(Debug, PartialEq)]
pub enum Unmerge {
    /// The registry has no `ca_file`: nothing to do.
    NotPresent,
    /// The registry's `ca_file` points elsewhere (returned); left alone.
    Differs(String),
    /// New file text, with the key and the parents it emptied removed.
    Write(String),
    /// Nothing else was left in the file: remove it.
    RemoveFile,
    /// The file cannot be edited in place: why, and what to do by hand instead (`remove
    /// configs."HOST:PORT".tls.ca_file (PATH)`); left alone. [`editing_hints`] words it.
    NotEditable(Unsupported, String),
}

/// Removes `configs."<registry>".tls.ca_file` when it is regkit's, then drops `tls`, the
/// registry entry and `configs` if that left them empty, editing the text in place. The
/// result is checked against the parsed document as for [`merge`].
pub fn unmerge(existing: &str, registry: &RegistryHost) -> Result<Unmerge, Error> {
    let mut doc = parse(Some(existing))?;
    let (auth, want) = (registry.authority(), ca_file(registry));
    let edited = match k3s_text::remove(existing, &auth, &want) {
        Ok(edited) => edited,
        Err(u) => {
            let what = format!("remove configs.\"{auth}\".tls.ca_file ({want})");
            return Ok(Unmerge::NotEditable(u, what));
        }
    };
    let text = match edited {
        Removed::NotPresent => return Ok(Unmerge::NotPresent),
        Removed::Differs(other) => return Ok(Unmerge::Differs(other)),
        Removed::RemoveFile => String::new(),
        Removed::Write(text) => text,
    };
    if let Some(Value::Map(tls)) = walk(&mut doc, &["configs", &auth, "tls"], false) {
        tls.retain(|(k, _)| k.as_str() != Some("ca_file"));
    }
    prune(&mut doc, &["configs", &auth, "tls"]);
    prune(&mut doc, &["configs", &auth]);
    prune(&mut doc, &["configs"]);
    check(same(&parse(Some(&text))?, &doc), &auth)?;
    Ok(if text.is_empty() { Unmerge::RemoveFile } else { Unmerge::Write(text) })
}

fn ca_file_of<'a>(doc: &'a Value, auth: &str) -> Option<&'a Value> {
    doc.get("configs")?.get(auth)?.get("tls")?.get("ca_file")
}

/// Two documents are the same, an empty mapping counting as an empty document.
fn same(a: &Value, b: &Value) -> bool {
    a == b || (a.is_empty_node() && b.is_empty_node())
}

/// Refuses an edit whose text does not parse to the document it was meant to give.
fn check(ok: bool, auth: &str) -> Result<(), Error> {
    if ok {
        return Ok(());
    }
    Err(bad(format!(
        "editing configs.{auth:?} in place would change other settings (the file uses YAML \
         features a line edit cannot follow); edit that entry by hand"
    )))
}

fn editing_hint(u: &Unsupported, what: &str) -> String {
    format!(
        "{u}; regkit edits this file in place to keep its comments and layout and cannot do \
         so here: {what} by hand, or rewrite that part in block style"
    )
}

/// One message for the [`Unmerge::NotEditable`] results of several addresses: those stopped
/// by the same line share one hint, their by-hand steps joined.
pub fn editing_hints(items: &[(Unsupported, String)]) -> String {
    let mut groups: Vec<(&Unsupported, Vec<&str>)> = Vec::new();
    for (u, what) in items {
        match groups.iter_mut().find(|(g, _)| *g == u) {
            Some((_, whats)) => whats.push(what),
            None => groups.push((u, vec![what])),
        }
    }
    let hints: Vec<String> =
        groups.iter().map(|(u, whats)| editing_hint(u, &whats.join(" and "))).collect();
    hints.join("; ")
}

fn not_editable(u: &Unsupported, what: &str) -> Error {
    bad(editing_hint(u, what))
}

fn parse(existing: Option<&str>) -> Result<Value, Error> {
    let doc = match existing {
        None => Value::Null,
        Some(t) if t.trim().is_empty() => Value::Null,
        Some(t) => serde_saphyr::from_str(t).map_err(|e| {
            // The parser's message carries a multi-line source snippet; keep its first line.
            let msg = e.to_string();
            let first = msg.lines().next().unwrap_or_default().trim_start_matches("error: ");
            bad(format!("is not valid YAML: {first}"))
        })?,
    };
    if !matches!(doc, Value::Null | Value::Map(_)) {
        return Err(bad("top level is not a mapping".into()));
    }
    Ok(doc)
}

fn bad(reason: String) -> Error {
    Error::Config { path: Path::new("/").join(YAML_PATH), reason }
}

/// The node at `path` (string keys) below `node`. A missing key is inserted as `Null` when
/// `create` (and a `Null` on the way becomes a mapping); otherwise it, or a node on the way
/// that is not a mapping, gives `None`.
fn walk<'a>(mut node: &'a mut Value, path: &[&str], create: bool) -> Option<&'a mut Value> {
    for key in path {
        let map = match node {
            Value::Map(map) => map,
            _ if create => node.map_mut()?,
            _ => return None,
        };
        let i = match map.iter().position(|(k, _)| k.as_str() == Some(key)) {
            Some(i) => i,
            None if create => Value::entry(map, key),
            None => return None,
        };
        node = &mut map[i].1;
    }
    Some(node)
}

/// `configs.<auth>.tls` as a mutable mapping, created as needed.
fn tls_map<'a>(doc: &'a mut Value, auth: &str) -> Result<&'a mut Vec<(Value, Value)>, Error> {
    walk(doc, &["configs", auth, "tls"], true)
        .and_then(Value::map_mut)
        .ok_or_else(|| bad(format!("configs.{auth:?}.tls or a parent of it is not a mapping")))
}

/// Removes the node at `path` when it is empty.
fn prune(doc: &mut Value, path: &[&str]) {
    let Some((last, parents)) = path.split_last() else { return };
    if let Some(Value::Map(map)) = walk(doc, parents, false) {
        map.retain(|(k, v)| k.as_str() != Some(last) || !v.is_empty_node());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg() -> RegistryHost {
        "10.0.0.7:5000".parse().unwrap()
    }

    const OTHER: &str = "mirrors:\n  docker.io:\n    endpoint:\n      - \"https://m.example:5000\"\n\
configs:\n  \"other:5000\":\n    auth:\n      username: u\n      password: p\n  \"10.0.0.7:5000\":\n    auth:\n      username: me\n";

    #[test]
    fn merge_keeps_other_keys_and_is_idempotent() {
        let Merge::Write(text) = merge(Some(OTHER), &reg(), false).unwrap() else { panic!() };
        let v: Value = serde_saphyr::from_str(&text).unwrap();
        let entry = v.get("configs").unwrap().get("10.0.0.7:5000").unwrap();
        assert_eq!(entry.get("auth").unwrap().get("username").unwrap().as_str(), Some("me"));
        assert_eq!(
            entry.get("tls").unwrap().get("ca_file").unwrap().as_str(),
            Some("/etc/rancher/k3s/registry-ca/10.0.0.7_5000.crt")
        );
        let before: Value = serde_saphyr::from_str(OTHER).unwrap();
        assert_eq!(v.get("mirrors"), before.get("mirrors"));
        assert_eq!(merge(Some(&text), &reg(), false).unwrap(), Merge::Unchanged);
        // Taking it out again gives back the original document.
        let Unmerge::Write(back) = unmerge(&text, &reg()).unwrap() else { panic!() };
        assert_eq!(serde_saphyr::from_str::<Value>(&back).unwrap(), before);
    }

    #[test]
    fn walk_finds_creates_and_stops_at_non_mappings() {
        let mut doc: Value = serde_saphyr::from_str("configs:\n  a: 1\n").unwrap();
        assert_eq!(walk(&mut doc, &["configs", "a"], false), Some(&mut Value::Int(1)));
        assert_eq!(walk(&mut doc, &["configs", "b", "tls"], false), None);
        assert_eq!(walk(&mut doc, &["configs", "a", "tls"], true), None);
        assert_eq!(walk(&mut doc, &["configs", "b", "tls"], true), Some(&mut Value::Null));
        let want: Value = serde_saphyr::from_str("configs:\n  a: 1\n  b:\n    tls:\n").unwrap();
        assert_eq!(doc, want);
    }

    #[test]
    fn fresh_file_round_trips_to_nothing_and_conflicts_are_reported() {
        let Merge::Write(text) = merge(None, &reg(), false).unwrap() else { panic!() };
        assert_eq!(unmerge(&text, &reg()).unwrap(), Unmerge::RemoveFile);
        let foreign = text.replace("/etc/rancher/k3s/registry-ca/10.0.0.7_5000.crt", "/x.crt");
        assert_eq!(merge(Some(&foreign), &reg(), false).unwrap(), Merge::Conflict("/x.crt".into()));
        assert!(matches!(merge(Some(&foreign), &reg(), true).unwrap(), Merge::Write(_)));
        assert_eq!(unmerge(&foreign, &reg()).unwrap(), Unmerge::Differs("/x.crt".into()));
        assert_eq!(unmerge(OTHER, &reg()).unwrap(), Unmerge::NotPresent);
        assert!(merge(Some("- a\n- b\n"), &reg(), false).is_err());
    }
}
