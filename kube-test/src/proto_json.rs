//! JSON from a decoded k8s-pb message. prost generates no serde or
//! reflection, so this reads the message's derived `Debug` rendering, which
//! names every field, and maps prost's snake_case field names back to the
//! API's JSON names through k8s-openapi's schemas. One conversion serves every
//! kind; the few wrapper types whose JSON form is not an object (Quantity,
//! IntOrString, Time, RawExtension…) are recognised by their type name.
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::OnceLock;

/// A parsed `Debug` rendering.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Struct(String, Vec<(String, Node)>),
    Some(Box<Node>),
    None,
    List(Vec<Node>),
    Map(Vec<(Node, Node)>),
    Str(String),
    Num(String),
    Bool(bool),
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!("expected {:?} at {}", c as char, self.i))
        }
    }
    fn ident(&mut self) -> String {
        self.ws();
        let start = self.i;
        while self
            .s
            .get(self.i)
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'#'))
        {
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }
    /// Comma-separated items up to `close`, allowing a trailing comma.
    fn items<T>(
        &mut self,
        close: u8,
        mut item: impl FnMut(&mut Self) -> Result<T, String>,
    ) -> Result<Vec<T>, String> {
        let mut out = vec![];
        loop {
            if self.eat(close) {
                return Ok(out);
            }
            out.push(item(self)?);
            if !self.eat(b',') {
                self.expect(close)?;
                return Ok(out);
            }
        }
    }
    fn string(&mut self) -> Result<String, String> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        loop {
            let c = *self.s.get(self.i).ok_or("unterminated string")?;
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let e = *self.s.get(self.i).ok_or("unterminated escape")?;
                    self.i += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'0' => out.push(0),
                        b'u' => {
                            // \u{XXXX}
                            self.expect(b'{')?;
                            let start = self.i;
                            while self.s.get(self.i).is_some_and(|c| *c != b'}') {
                                self.i += 1;
                            }
                            let hex = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
                            self.i += 1;
                            let ch = u32::from_str_radix(hex, 16)
                                .ok()
                                .and_then(char::from_u32)
                                .ok_or("bad unicode escape")?;
                            out.extend(ch.to_string().as_bytes());
                        }
                        other => out.push(other),
                    }
                }
                c => out.push(c),
            }
        }
        String::from_utf8(out).map_err(|e| e.to_string())
    }
    fn node(&mut self) -> Result<Node, String> {
        self.ws();
        match self.s.get(self.i).copied().ok_or("unexpected end")? {
            b'"' => self.string().map(Node::Str),
            b'[' => {
                self.i += 1;
                self.items(b']', Self::node).map(Node::List)
            }
            b'{' => {
                self.i += 1;
                self.items(b'}', |p| {
                    let k = p.node()?;
                    p.expect(b':')?;
                    Ok((k, p.node()?))
                })
                .map(Node::Map)
            }
            b'-' | b'0'..=b'9' => {
                let start = self.i;
                while self
                    .s
                    .get(self.i)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'+' | b'.'))
                {
                    self.i += 1;
                }
                Ok(Node::Num(
                    String::from_utf8_lossy(&self.s[start..self.i]).into_owned(),
                ))
            }
            _ => {
                let id = self.ident();
                match id.as_str() {
                    "" => Err(format!("unexpected input at {}", self.i)),
                    "None" => Ok(Node::None),
                    "true" => Ok(Node::Bool(true)),
                    "false" => Ok(Node::Bool(false)),
                    "NaN" | "inf" => Ok(Node::Num(id)),
                    "Some" => {
                        self.expect(b'(')?;
                        let n = self.node()?;
                        self.expect(b')')?;
                        Ok(Node::Some(Box::new(n)))
                    }
                    _ => {
                        let fields = if self.eat(b'{') {
                            self.items(b'}', |p| {
                                let f = p.ident();
                                p.expect(b':')?;
                                Ok((f, p.node()?))
                            })?
                        } else {
                            vec![]
                        };
                        Ok(Node::Struct(id, fields))
                    }
                }
            }
        }
    }
}

fn parse(s: &str) -> Result<Node, String> {
    let mut p = Parser {
        s: s.as_bytes(),
        i: 0,
    };
    let n = p.node()?;
    p.ws();
    if p.i != s.len() {
        return Err(format!("trailing input at {}", p.i));
    }
    Ok(n)
}

/// Field names compared without case or separators: prost's `cluster_ip`
/// and the API's `clusterIP` are both `clusterip`.
fn fold(name: &str) -> String {
    name.trim_start_matches("r#")
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn collect_names(v: &Value, out: &mut HashMap<String, Vec<String>>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::Object(props)) = m.get("properties") {
                for k in props.keys() {
                    let e = out.entry(fold(k)).or_default();
                    if !e.contains(k) {
                        e.push(k.clone());
                    }
                }
            }
            m.values().for_each(|x| collect_names(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| collect_names(x, out)),
        _ => {}
    }
}

/// Folded name → the JSON names that fold to it, over every built-in schema.
fn names() -> &'static HashMap<String, Vec<String>> {
    static NAMES: OnceLock<HashMap<String, Vec<String>>> = OnceLock::new();
    NAMES.get_or_init(|| {
        let mut out = HashMap::new();
        for b in crate::catalog::all() {
            collect_names(&(b.schema)(), &mut out);
        }
        out
    })
}

/// The JSON name of a prost field. A few names fold alike (`$schema` of
/// JSONSchemaProps and CRD versions' `schema`; `Port` of a Node's
/// DaemonEndpoint and everyone's `port`): the plain camelCase spelling wins.
fn json_name(field: &str) -> String {
    let field = field.trim_start_matches("r#");
    let camel: String = {
        let mut up = false;
        let mut s = String::new();
        for c in field.chars() {
            if c == '_' {
                up = true;
            } else if up {
                s.push(c.to_ascii_uppercase());
                up = false;
            } else {
                s.push(c);
            }
        }
        s
    };
    match names().get(&fold(field)).map(Vec::as_slice) {
        Some([one]) => one.clone(),
        Some(several) if several.contains(&camel) => camel,
        Some([first, ..]) => first.clone(),
        _ => camel,
    }
}

fn base64(b: &[u8]) -> String {
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
    out
}

/// A byte string: prost renders `bytes` as a list of numbers.
fn bytes(n: &Node) -> Option<Vec<u8>> {
    match n {
        Node::List(items) => items
            .iter()
            .map(|x| match x {
                Node::Num(s) => s.parse().ok(),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

fn field<'a>(fields: &'a [(String, Node)], name: &str) -> Option<&'a Node> {
    fields
        .iter()
        .find(|(f, _)| f.trim_start_matches("r#") == name)
        .map(|(_, n)| match n {
            Node::Some(x) => x.as_ref(),
            other => other,
        })
}

fn int(n: Option<&Node>) -> Option<i64> {
    match n {
        Some(Node::Num(s)) => s.parse().ok(),
        _ => None,
    }
}

/// RFC 3339 in UTC, with `frac` fractional digits (Time has none, MicroTime six).
fn timestamp(fields: &[(String, Node)], frac: usize) -> Value {
    let Some(secs) = int(field(fields, "seconds")) else {
        // a zero time is sent as an empty message
        return Value::Null;
    };
    let nanos = int(field(fields, "nanos")).unwrap_or(0);
    match jiff::Timestamp::new(secs, nanos as i32) {
        Ok(t) if frac == 0 => json!(t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()),
        Ok(t) => json!(t.strftime("%Y-%m-%dT%H:%M:%S.%6fZ").to_string()),
        Err(_) => Value::Null,
    }
}

/// A Go `time.Duration` string, as metav1.Duration marshals it.
fn go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let n = nanos.unsigned_abs();
    let (h, m) = (n / 3_600_000_000_000, n / 60_000_000_000 % 60);
    let s = n % 60_000_000_000;
    let secs = if s.is_multiple_of(1_000_000_000) {
        format!("{}s", s / 1_000_000_000)
    } else {
        let f = format!("{:09}", s % 1_000_000_000);
        format!("{}.{}s", s / 1_000_000_000, f.trim_end_matches('0'))
    };
    match (h, m) {
        (0, 0) => format!("{sign}{secs}"),
        (0, m) => format!("{sign}{m}m{secs}"),
        (h, m) => format!("{sign}{h}h{m}m{secs}"),
    }
}

/// Embedded JSON (RawExtension, apiextensions JSON, FieldsV1).
fn raw_json(fields: &[(String, Node)]) -> Value {
    field(fields, "raw")
        .and_then(bytes)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null)
}

fn convert(n: &Node) -> Value {
    match n {
        Node::Some(x) => match bytes(x) {
            // an optional field holding a list of numbers is `bytes`
            Some(b) if matches!(**x, Node::List(_)) => json!(base64(&b)),
            _ => convert(x),
        },
        Node::None => Value::Null,
        Node::Str(s) => json!(s),
        Node::Bool(b) => json!(b),
        Node::Num(s) => serde_json::from_str(s).unwrap_or(Value::Null),
        Node::List(items) => Value::Array(
            items
                .iter()
                .map(|x| match (x, bytes(x)) {
                    (Node::List(_), Some(b)) => json!(base64(&b)),
                    _ => convert(x),
                })
                .collect(),
        ),
        Node::Map(entries) => {
            let mut m = Map::new();
            for (k, v) in entries {
                let key = match k {
                    Node::Str(s) => s.clone(),
                    other => convert(other).to_string(),
                };
                let val = match (v, bytes(v)) {
                    // map<string, bytes> (Secret data, ConfigMap binaryData)
                    (Node::List(_), Some(b)) => json!(base64(&b)),
                    _ => convert(v),
                };
                m.insert(key, val);
            }
            Value::Object(m)
        }
        Node::Struct(name, fields) => structure(name, fields),
    }
}

fn structure(name: &str, fields: &[(String, Node)]) -> Value {
    match name {
        "Quantity" => field(fields, "string").map(convert).unwrap_or(json!("0")),
        "IntOrString" => match int(field(fields, "type")) {
            Some(1) => field(fields, "str_val").map(convert).unwrap_or(json!("")),
            _ => json!(int(field(fields, "int_val")).unwrap_or(0)),
        },
        "Time" => timestamp(fields, 0),
        "MicroTime" => timestamp(fields, 6),
        "Duration" if fields.len() == 1 => {
            json!(go_duration(int(field(fields, "duration")).unwrap_or(0)))
        }
        "RawExtension" | "Json" | "FieldsV1" => raw_json(fields),
        "JsonSchemaPropsOrBool" => match field(fields, "schema") {
            Some(s) if *s != Node::None => convert(s),
            _ => json!(matches!(field(fields, "allows"), Some(Node::Bool(true)))),
        },
        "JsonSchemaPropsOrArray" | "JsonSchemaPropsOrStringArray" => {
            match field(fields, "schema") {
                Some(s) if *s != Node::None => convert(s),
                _ => fields
                    .iter()
                    .find(|(f, _)| f != "schema")
                    .map(|(_, n)| convert(n))
                    .unwrap_or(Value::Null),
            }
        }
        _ => {
            let mut m = Map::new();
            for (f, n) in fields {
                let keep = match n {
                    Node::None => false,
                    // unset repeated and map fields
                    Node::List(l) => !l.is_empty(),
                    Node::Map(e) => !e.is_empty(),
                    // Go encodes every non-pointer string, empty or not
                    Node::Some(x) if **x == Node::Str(String::new()) => false,
                    // nor is a zero generation ever meant (pod templates carry one)
                    Node::Some(x) if name == "ObjectMeta" && f == "generation" => {
                        **x != Node::Num("0".into())
                    }
                    _ => true,
                };
                if keep {
                    let v = convert(n);
                    if !v.is_null() {
                        m.insert(json_name(f), v);
                    }
                }
            }
            Value::Object(m)
        }
    }
}

/// JSON for a message's `Debug` rendering.
pub fn from_debug(rendered: &str) -> Result<Value, String> {
    parse(rendered).map(|n| convert(&n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_names_fold_without_ambiguity_but_two() {
        let mut ambiguous: Vec<Vec<String>> = names()
            .values()
            .filter(|v| v.len() > 1)
            .cloned()
            .map(|mut v| {
                v.sort();
                v
            })
            .collect();
        ambiguous.sort();
        assert_eq!(
            ambiguous,
            vec![
                vec!["$schema".to_string(), "schema".to_string()],
                vec!["Port".to_string(), "port".to_string()],
            ]
        );
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(1_500_000_000), "1.5s");
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(go_duration(90_000_000_000), "1m30s");
    }

    #[test]
    fn debug_renderings_become_api_json() {
        let v = from_debug(
            r#"Service { metadata: Some(ObjectMeta { name: Some("s"), generate_name: Some(""), labels: {"a": "b"}, creation_timestamp: Some(Time { seconds: None, nanos: None }) }), spec: Some(ServiceSpec { ports: [ServicePort { port: Some(80), target_port: Some(IntOrString { r#type: Some(1), int_val: Some(0), str_val: Some("http") }) }], cluster_ip: Some("None"), external_ips: [], r#type: Some("ClusterIP"), publish_not_ready_addresses: Some(false) }) }"#,
        )
        .unwrap();
        assert_eq!(
            v,
            json!({"metadata": {"name": "s", "labels": {"a": "b"}},
                "spec": {"ports": [{"port": 80, "targetPort": "http"}], "clusterIP": "None", "type": "ClusterIP", "publishNotReadyAddresses": false}})
        );
        let v = from_debug(
            r#"Secret { data: {"k": [104, 105]}, immutable: Some(true), string_data: {}, r#type: Some("a\"b\n\u{1}é") }"#,
        )
        .unwrap();
        assert_eq!(
            v,
            json!({"data": {"k": "aGk="}, "immutable": true, "type": "a\"b\n\u{1}é"})
        );
        let v = from_debug(
            r#"ResourceQuotaSpec { hard: {"pods": Quantity { string: Some("2") }}, scopes: [] }"#,
        )
        .unwrap();
        assert_eq!(v, json!({"hard": {"pods": "2"}}));
        let v = from_debug(
            r#"Event { event_time: Some(MicroTime { seconds: Some(1700000000), nanos: Some(5000) }), first_timestamp: Some(Time { seconds: Some(1700000000), nanos: Some(0) }) }"#,
        )
        .unwrap();
        assert_eq!(
            v,
            json!({"eventTime": "2023-11-14T22:13:20.000005Z", "firstTimestamp": "2023-11-14T22:13:20Z"})
        );
    }
}
