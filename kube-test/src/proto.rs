//! Protobuf request bodies (`application/vnd.kubernetes.protobuf`), which
//! kubectl sends for built-in kinds: the `k8s\0` envelope holds a
//! runtime.Unknown whose type meta names the k8s-pb message inside.
use k8s_pb::apimachinery::pkg::runtime::Unknown;
use prost::Message;
use serde_json::{Value, json};

/// Decode a protobuf body into the JSON object the rest of kube-test handles.
pub fn decode(body: &[u8]) -> Result<Value, String> {
    let rest = body
        .strip_prefix(b"k8s\0")
        .ok_or("missing protobuf magic")?;
    let unknown = Unknown::decode(rest).map_err(|e| e.to_string())?;
    let tm = unknown.type_meta.unwrap_or_default();
    let (api_version, kind) = (
        tm.api_version.unwrap_or_default(),
        tm.kind.unwrap_or_default(),
    );
    let decode = crate::catalog::decoder(&api_version, &kind)
        .ok_or_else(|| format!("no protobuf message is known for {api_version}, Kind={kind}"))?;
    let rendered = decode(&unknown.raw.unwrap_or_default()).map_err(|e| e.to_string())?;
    let mut obj = crate::proto_json::from_debug(&rendered)?;
    if !obj.is_object() {
        return Err(format!("{kind} did not decode to an object"));
    }
    obj["apiVersion"] = json!(api_version);
    obj["kind"] = json!(kind);
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_pb::api::core::v1 as core;
    use k8s_pb::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use k8s_pb::apimachinery::pkg::runtime::TypeMeta;

    fn envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
        let u = Unknown {
            type_meta: Some(TypeMeta {
                api_version: Some(api_version.into()),
                kind: Some(kind.into()),
            }),
            raw: Some(raw),
            content_encoding: Some(String::new()),
            content_type: Some(String::new()),
        };
        let mut out = b"k8s\0".to_vec();
        out.extend(u.encode_to_vec());
        out
    }

    #[test]
    fn secret_body_decodes_to_json() {
        let s = core::Secret {
            metadata: Some(ObjectMeta {
                name: Some("s".into()),
                namespace: Some("ns".into()),
                generate_name: Some(String::new()),
                ..Default::default()
            }),
            data: [("k".to_string(), b"hi".to_vec())].into(),
            r#type: Some("Opaque".into()),
            ..Default::default()
        };
        let v = decode(&envelope("v1", "Secret", s.encode_to_vec())).unwrap();
        assert_eq!(
            v,
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "ns"},
                "data": {"k": "aGk="}, "type": "Opaque"})
        );
    }

    #[test]
    fn unknown_kinds_and_garbage_are_refused() {
        assert_eq!(
            decode(&envelope("example.com/v1", "Widget", vec![])).unwrap_err(),
            "no protobuf message is known for example.com/v1, Kind=Widget"
        );
        assert_eq!(decode(b"{}").unwrap_err(), "missing protobuf magic");
    }
}
