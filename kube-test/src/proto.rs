//! Minimal decoding of Kubernetes protobuf request bodies for the few kinds
//! kubectl's typed commands send (`kubectl create namespace|configmap|secret|
//! serviceaccount|token`, `kubectl auth can-i`).
use serde_json::{Map, Value, json};

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

impl<'a> Reader<'a> {
    fn new(b: &'a [u8]) -> Self {
        Reader { b, i: 0 }
    }
    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.b.get(self.i)?;
            self.i += 1;
            v |= ((byte & 0x7f) as u64) << shift;
            if byte & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    fn next(&mut self) -> Option<Option<(u64, Field<'a>)>> {
        if self.i >= self.b.len() {
            return Some(None);
        }
        let key = self.varint()?;
        let (num, wire) = (key >> 3, key & 7);
        let f = match wire {
            0 => Field::Varint(self.varint()?),
            1 => {
                self.i += 8;
                Field::Varint(0)
            }
            2 => {
                let len = self.varint()? as usize;
                let s = self.b.get(self.i..self.i + len)?;
                self.i += len;
                Field::Bytes(s)
            }
            5 => {
                self.i += 4;
                Field::Varint(0)
            }
            _ => return None,
        };
        Some(Some((num, f)))
    }
    fn fields(b: &'a [u8]) -> Option<Vec<(u64, Field<'a>)>> {
        let mut r = Reader::new(b);
        let mut out = vec![];
        while let Some((n, f)) = r.next()? {
            out.push((n, f));
        }
        Some(out)
    }
}

fn s(b: &[u8]) -> Value {
    json!(String::from_utf8_lossy(b))
}

fn b64(b: &[u8]) -> Value {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if c.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if c.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    json!(out)
}

/// A map<string, string|bytes> entry.
fn entry(b: &[u8], bytes: bool) -> Option<(String, Value)> {
    let mut k = String::new();
    let mut v = if bytes { b64(&[]) } else { json!("") };
    for (n, f) in Reader::fields(b)? {
        if let Field::Bytes(x) = f {
            match n {
                1 => k = String::from_utf8_lossy(x).into_owned(),
                2 => v = if bytes { b64(x) } else { s(x) },
                _ => {}
            }
        }
    }
    Some((k, v))
}

fn insert_map(m: &mut Map<String, Value>, key: &str, b: &[u8], bytes: bool) -> Option<()> {
    let (k, v) = entry(b, bytes)?;
    m.entry(key).or_insert_with(|| json!({}))[k] = v;
    Some(())
}

fn push(m: &mut Map<String, Value>, key: &str, v: Value) {
    if let Value::Array(a) = m.entry(key).or_insert_with(|| json!([])) {
        a.push(v);
    }
}

fn object_meta(b: &[u8]) -> Option<Value> {
    let mut m = Map::new();
    for (n, f) in Reader::fields(b)? {
        match (n, f) {
            (1, Field::Bytes(x)) if !x.is_empty() => {
                m.insert("name".into(), s(x));
            }
            (2, Field::Bytes(x)) if !x.is_empty() => {
                m.insert("generateName".into(), s(x));
            }
            (3, Field::Bytes(x)) if !x.is_empty() => {
                m.insert("namespace".into(), s(x));
            }
            (6, Field::Bytes(x)) if !x.is_empty() => {
                m.insert("resourceVersion".into(), s(x));
            }
            (11, Field::Bytes(x)) => insert_map(&mut m, "labels", x, false)?,
            (12, Field::Bytes(x)) => insert_map(&mut m, "annotations", x, false)?,
            (14, Field::Bytes(x)) => push(&mut m, "finalizers", s(x)),
            _ => {}
        }
    }
    Some(Value::Object(m))
}

fn resource_attributes(b: &[u8]) -> Option<Value> {
    let names = [
        "",
        "namespace",
        "verb",
        "group",
        "version",
        "resource",
        "subresource",
        "name",
    ];
    let mut m = Map::new();
    for (n, f) in Reader::fields(b)? {
        if let (Some(k), Field::Bytes(x)) = (names.get(n as usize).filter(|k| !k.is_empty()), f) {
            m.insert(k.to_string(), s(x));
        }
    }
    Some(Value::Object(m))
}

fn decode_kind(api_version: &str, kind: &str, raw: &[u8]) -> Option<Value> {
    let mut obj = Map::new();
    obj.insert("apiVersion".into(), json!(api_version));
    obj.insert("kind".into(), json!(kind));
    for (n, f) in Reader::fields(raw)? {
        let x = match f {
            Field::Varint(v) => {
                if matches!((kind, n), ("ConfigMap", 4) | ("Secret", 5)) {
                    obj.insert("immutable".into(), json!(v != 0));
                }
                continue;
            }
            Field::Bytes(x) => x,
        };
        if n == 1 {
            obj.insert("metadata".into(), object_meta(x)?);
            continue;
        }
        match (kind, n) {
            ("ConfigMap", 2) => insert_map(&mut obj, "data", x, false)?,
            ("ConfigMap", 3) => insert_map(&mut obj, "binaryData", x, true)?,
            ("Secret", 2) => insert_map(&mut obj, "data", x, true)?,
            ("Secret", 3) => {
                obj.insert("type".into(), s(x));
            }
            ("Secret", 4) => insert_map(&mut obj, "stringData", x, false)?,
            ("Namespace", 2) => {
                let mut fins = vec![];
                for (fnum, ff) in Reader::fields(x)? {
                    if let (1, Field::Bytes(v)) = (fnum, ff) {
                        fins.push(s(v));
                    }
                }
                obj.insert("spec".into(), json!({"finalizers": fins}));
            }
            ("ServiceAccount", 2) | ("ServiceAccount", 3) => {}
            ("TokenRequest", 2) => {
                let mut spec = Map::new();
                for (fnum, ff) in Reader::fields(x)? {
                    match (fnum, ff) {
                        (1, Field::Bytes(v)) => push(&mut spec, "audiences", s(v)),
                        (4, Field::Varint(v)) => {
                            spec.insert("expirationSeconds".into(), json!(v));
                        }
                        _ => {}
                    }
                }
                obj.insert("spec".into(), Value::Object(spec));
            }
            ("SelfSubjectAccessReview", 2)
            | ("SubjectAccessReview", 2)
            | ("LocalSubjectAccessReview", 2) => {
                let mut spec = Map::new();
                for (fnum, ff) in Reader::fields(x)? {
                    match (fnum, ff) {
                        (1, Field::Bytes(v)) => {
                            spec.insert("resourceAttributes".into(), resource_attributes(v)?);
                        }
                        (2, Field::Bytes(v)) => {
                            let mut na = Map::new();
                            for (k, f2) in Reader::fields(v)? {
                                if let Field::Bytes(t) = f2 {
                                    na.insert(if k == 1 { "path" } else { "verb" }.into(), s(t));
                                }
                            }
                            spec.insert("nonResourceAttributes".into(), Value::Object(na));
                        }
                        (3, Field::Bytes(v)) if kind != "SelfSubjectAccessReview" => {
                            spec.insert("user".into(), s(v));
                        }
                        (4, Field::Bytes(v)) if kind != "SelfSubjectAccessReview" => {
                            push(&mut spec, "groups", s(v))
                        }
                        _ => {}
                    }
                }
                obj.insert("spec".into(), Value::Object(spec));
            }
            _ => {}
        }
    }
    Some(Value::Object(obj))
}

/// Decode a `k8s\0`-prefixed protobuf body into JSON, for the supported kinds.
pub fn decode(body: &[u8]) -> Result<Value, String> {
    let rest = body
        .strip_prefix(b"k8s\0")
        .ok_or("missing protobuf magic")?;
    let mut api_version = String::new();
    let mut kind = String::new();
    let mut raw: &[u8] = &[];
    for (n, f) in Reader::fields(rest).ok_or("malformed protobuf")? {
        match (n, f) {
            (1, Field::Bytes(tm)) => {
                for (k, f2) in Reader::fields(tm).ok_or("malformed protobuf")? {
                    if let Field::Bytes(t) = f2 {
                        let v = String::from_utf8_lossy(t).into_owned();
                        if k == 1 { api_version = v } else { kind = v }
                    }
                }
            }
            (2, Field::Bytes(r)) => raw = r,
            _ => {}
        }
    }
    match kind.as_str() {
        "Namespace"
        | "ConfigMap"
        | "Secret"
        | "ServiceAccount"
        | "TokenRequest"
        | "SelfSubjectAccessReview"
        | "SubjectAccessReview"
        | "LocalSubjectAccessReview" => {
            decode_kind(&api_version, &kind, raw).ok_or_else(|| "malformed protobuf".into())
        }
        other => Err(format!(
            "protobuf bodies are only understood for a few kinds, not {other:?}; send JSON"
        )),
    }
}
