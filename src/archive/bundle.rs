//! The archive format, pure: a [`Bundle`] (manifest and objects), the normal form objects are
//! archived in, and [`seal`]/[`open`] between a bundle and the bytes the store keeps.
//! Nothing here touches a clock, a network or a disk, so every rule is unit-tested.

use std::collections::BTreeMap;
use std::fmt;

use aes_gcm::aead::{Aead, Generate, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::ArchiveError;
use super::keys::{Key, KeyRing};

/// The format version this code writes and the only one it reads.
pub const FORMAT_VERSION: u32 = 1;
/// The first bytes of every sealed archive.
pub const MAGIC: &[u8; 6] = b"LLARCH";

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// zstd's default level: a few MB of JSON compress in milliseconds to a fifth of their size.
const ZSTD_LEVEL: i32 = 3;

/// Metadata fields the API server sets. They are dropped because a restored object gets new
/// ones, and keeping them would make a restore fail (`resourceVersion` on create) or point at
/// nothing (`ownerReferences` name owners by uid, and the uids will not exist after a restore).
const SERVER_METADATA: [&str; 9] = [
    "uid",
    "resourceVersion",
    "managedFields",
    "creationTimestamp",
    "generation",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "ownerReferences",
];

/// What a sealed archive holds: the manifest and the objects, in the manifest's order.
#[derive(Clone, Debug, PartialEq)]
pub struct Bundle {
    pub manifest: Manifest,
    pub objects: Vec<Value>,
}

/// The description of an archive: what it holds and the checksums to verify it by. It is also
/// written in the clear beside the archive (it holds the Tenant's spec and object names, never
/// object contents), so that retention and people can read it without the key.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub format_version: u32,
    pub tenant: String,
    /// The TenantQuota the tenant was on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// The Tenant's spec as it was when archived.
    pub spec: Value,
    /// RFC 3339.
    pub created_at: String,
    /// Id of the key the archive is sealed with; set by [`seal`].
    pub key_id: String,
    /// Objects per `apiVersion/Kind` (`v1/ConfigMap`, `apps/v1/Deployment`).
    pub counts: BTreeMap<String, u64>,
    /// One entry per object, sorted by apiVersion, kind, namespace, name.
    pub objects: Vec<ObjectEntry>,
    /// Checksum of the whole: see [`whole_checksum`].
    pub sha256: String,
    /// Always false: PersistentVolumeClaims are archived with their spec, never their data.
    pub volume_data_included: bool,
}

/// One archived object: who it is and the sha256 of its canonical JSON.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "camelCase")]
pub struct ObjectEntry {
    pub api_version: String,
    pub kind: String,
    /// Absent for cluster-scoped objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    pub sha256: String,
}

impl fmt::Display for ObjectEntry {
    /// `ConfigMap acme-prod/settings (v1)`: how errors name an object.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{} ({})", self.kind, self.name, self.api_version),
            None => write!(f, "{} {} ({})", self.kind, self.name, self.api_version),
        }
    }
}

impl ObjectEntry {
    /// The `counts` key of this object.
    pub fn type_key(&self) -> String {
        format!("{}/{}", self.api_version, self.kind)
    }

    fn same_object(&self, other: &ObjectEntry) -> bool {
        self.api_version == other.api_version
            && self.kind == other.kind
            && self.namespace == other.namespace
            && self.name == other.name
    }
}

impl Manifest {
    /// A sentence for the Tenant's status when the archive holds claims whose data it lacks.
    pub fn volume_note(&self) -> Option<String> {
        let claims: u64 = self
            .counts
            .iter()
            .filter(|(k, _)| k.ends_with("/PersistentVolumeClaim"))
            .map(|(_, n)| n)
            .sum();
        (claims > 0 && !self.volume_data_included).then(|| {
            format!(
                "{claims} PersistentVolumeClaim(s) archived with their spec only: volume data is not included"
            )
        })
    }
}

impl Bundle {
    /// A bundle of `objects` (normalised here, so callers may pass them as read from the API
    /// server), sorted by apiVersion, kind, namespace and name so that the same objects always
    /// make the same archive. Every object needs `apiVersion`, `kind` and `metadata.name`
    /// (items of a LIST response lack the first two: set them before), and none may appear
    /// twice. The key id is filled in by [`seal`].
    pub fn new(
        tenant: &str,
        plan: Option<&str>,
        spec: Value,
        objects: Vec<Value>,
        created_at: jiff::Timestamp,
    ) -> Result<Bundle, ArchiveError> {
        let mut keyed = Vec::with_capacity(objects.len());
        for (index, object) in objects.iter().enumerate() {
            let object = normalise(object);
            let entry = entry_of(&object)
                .map_err(|reason| ArchiveError::InvalidObject { index, reason })?;
            keyed.push((entry, object));
        }
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(pair) = keyed.windows(2).find(|w| w[0].0.same_object(&w[1].0)) {
            return Err(ArchiveError::DuplicateObject {
                object: pair[0].0.to_string(),
            });
        }
        let (entries, objects): (Vec<_>, Vec<_>) = keyed.into_iter().unzip();
        let manifest = Manifest {
            format_version: FORMAT_VERSION,
            tenant: tenant.to_string(),
            plan: plan.map(str::to_string),
            spec,
            created_at: created_at.to_string(),
            key_id: String::new(),
            counts: counts(&entries),
            sha256: whole_checksum(&entries),
            objects: entries,
            volume_data_included: false,
        };
        Ok(Bundle { manifest, objects })
    }
}

/// `obj` without what the API server sets: `status` (the server or a controller rebuilds it;
/// a restored object starts without one), and in `metadata` `uid`, `resourceVersion`,
/// `managedFields`, `creationTimestamp`, `generation`, `selfLink`, `deletionTimestamp`,
/// `deletionGracePeriodSeconds` and `ownerReferences`. Everything else stays, annotations
/// included (`kubectl.kubernetes.io/last-applied-configuration` is the user's own record).
pub fn normalise(obj: &Value) -> Value {
    let mut out = obj.clone();
    if let Some(map) = out.as_object_mut() {
        map.remove("status");
        if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            for field in SERVER_METADATA {
                meta.remove(field);
            }
        }
    }
    out
}

/// The sha256 (hex) of `obj`'s normal form in canonical JSON: what the manifest records, and
/// what a restore compares the objects it wrote against.
pub fn object_sha256(obj: &Value) -> String {
    let mut buf = Vec::new();
    write_canonical(&normalise(obj), &mut buf);
    hex(&Sha256::digest(&buf))
}

/// The checksum of the whole archive: the sha256 of one line per entry, in the entries'
/// order, `<sha256>\t<apiVersion>\t<kind>\t<namespace or empty>\t<name>\n`. It changes when
/// any object, or the set of objects, changes; `status.archive.sha256` shows it.
pub fn whole_checksum(entries: &[ObjectEntry]) -> String {
    let mut hasher = Sha256::new();
    for e in entries {
        let ns = e.namespace.as_deref().unwrap_or("");
        hasher.update(format!(
            "{}\t{}\t{}\t{ns}\t{}\n",
            e.sha256, e.api_version, e.kind, e.name
        ));
    }
    hex(&hasher.finalize())
}

/// `bundle` as the bytes an archive store keeps, encrypted with `key` under a fresh nonce.
/// The manifest records `key`'s id whatever the bundle's said. Nothing is verified here:
/// an archive is proven by reading it back and [`open`]ing it.
pub fn seal(bundle: &Bundle, key: &Key) -> Vec<u8> {
    let mut plain = Vec::with_capacity(bundle.objects.len() * 2048 + 4096);
    let manifest = Manifest {
        key_id: key.id().to_string(),
        ..bundle.manifest.clone()
    };
    serde_json::to_writer(&mut plain, &manifest).expect("a manifest always serialises");
    for object in &bundle.objects {
        plain.push(b'\n');
        write_canonical(object, &mut plain);
    }
    let compressed =
        zstd::bulk::compress(&plain, ZSTD_LEVEL).expect("compressing into memory cannot fail");

    let nonce = Nonce::generate();
    let mut out = header(key.id());
    out.extend_from_slice(&nonce);
    let cipher = Aes256Gcm::new(&key.cipher_key());
    let sealed = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: &compressed,
                aad: &out,
            },
        )
        .expect("AES-GCM encrypts anything under 64 GiB");
    out.extend_from_slice(&sealed);
    out
}

/// The bundle in `bytes`, decrypted with the key its header names and fully verified
/// ([`verify`]). Never panics, whatever the bytes.
pub fn open(bytes: &[u8], keys: &KeyRing) -> Result<Bundle, ArchiveError> {
    let (key_id, header_len) = parse_header(bytes)?;
    let Some(key) = keys.get(&key_id) else {
        return Err(ArchiveError::UnknownKey {
            key_id,
            known: keys.ids().join(", "),
        });
    };
    // The associated data is the header and the nonce, as `seal` wrote them.
    let (aad, ciphertext) = bytes.split_at(header_len + NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = aad[header_len..]
        .try_into()
        .expect("split at the nonce's end");
    let cipher = Aes256Gcm::new(&key.cipher_key());
    let compressed = cipher
        .decrypt(
            &Nonce::from(nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map_err(|_| ArchiveError::Decrypt {
            key_id: key_id.clone(),
        })?;
    let plain = zstd::stream::decode_all(&compressed[..])
        .map_err(|e| ArchiveError::Corrupt(format!("decompression failed: {e}")))?;

    let mut lines = plain.split(|&b| b == b'\n');
    let manifest: Manifest = serde_json::from_slice(lines.next().unwrap_or_default())
        .map_err(|e| ArchiveError::Corrupt(format!("unreadable manifest: {e}")))?;
    if manifest.format_version != FORMAT_VERSION {
        return Err(ArchiveError::UnsupportedVersion {
            found: u16::try_from(manifest.format_version).unwrap_or(u16::MAX),
            supported: FORMAT_VERSION as u16,
        });
    }
    if manifest.key_id != key_id {
        return Err(ArchiveError::Corrupt(format!(
            "the header names key {key_id} but the manifest names {}",
            manifest.key_id
        )));
    }
    let objects = lines
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_slice(line)
                .map_err(|e| ArchiveError::Corrupt(format!("object {} is unreadable: {e}", i + 1)))
        })
        .collect::<Result<Vec<Value>, _>>()?;
    let bundle = Bundle { manifest, objects };
    verify(&bundle)?;
    Ok(bundle)
}

/// Checks that `bundle`'s objects are the ones its manifest describes: as many as entries, each
/// one's identity and checksum, the counts per kind and the whole checksum.
pub fn verify(bundle: &Bundle) -> Result<(), ArchiveError> {
    let m = &bundle.manifest;
    if bundle.objects.len() != m.objects.len() {
        return Err(ArchiveError::CountMismatch {
            details: vec![format!(
                "{} objects, manifest lists {}",
                bundle.objects.len(),
                m.objects.len()
            )],
        });
    }
    let differ: Vec<String> = m
        .objects
        .iter()
        .zip(&bundle.objects)
        .filter(|(entry, object)| match entry_of(object) {
            Ok(found) => !found.same_object(entry) || found.sha256 != entry.sha256,
            Err(_) => true,
        })
        .map(|(entry, _)| entry.to_string())
        .collect();
    if !differ.is_empty() {
        return Err(ArchiveError::ObjectChecksum { objects: differ });
    }
    let found = counts(&m.objects);
    if found != m.counts {
        let kinds: std::collections::BTreeSet<&String> =
            found.keys().chain(m.counts.keys()).collect();
        let details = kinds
            .into_iter()
            .filter_map(|k| {
                let (has, says) = (
                    found.get(k).copied().unwrap_or(0),
                    m.counts.get(k).copied().unwrap_or(0),
                );
                (has != says).then(|| format!("{k}: {has} objects, manifest says {says}"))
            })
            .collect();
        return Err(ArchiveError::CountMismatch { details });
    }
    let whole = whole_checksum(&m.objects);
    if whole != m.sha256 {
        return Err(ArchiveError::WholeChecksum {
            expected: m.sha256.clone(),
            found: whole,
        });
    }
    Ok(())
}

fn header(key_id: &str) -> Vec<u8> {
    let mut h = Vec::with_capacity(MAGIC.len() + 3 + key_id.len() + NONCE_LEN);
    h.extend_from_slice(MAGIC);
    h.extend_from_slice(&(FORMAT_VERSION as u16).to_be_bytes());
    h.push(u8::try_from(key_id.len()).expect("key ids are at most 64 bytes (Key checks)"));
    h.extend_from_slice(key_id.as_bytes());
    h
}

/// The id of the key that sealed `bytes`, read from the plain header without decrypting:
/// which key a restore needs, to say so before trying.
pub fn key_id_of(bytes: &[u8]) -> Result<String, ArchiveError> {
    parse_header(bytes).map(|(id, _)| id)
}

/// The key id and the header's length (up to the nonce), or why `bytes` is no archive.
fn parse_header(bytes: &[u8]) -> Result<(String, usize), ArchiveError> {
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(ArchiveError::NotAnArchive);
    }
    let truncated = || ArchiveError::Corrupt(format!("truncated after {} bytes", bytes.len()));
    let mut at = MAGIC.len();
    let version = bytes.get(at..at + 2).ok_or_else(truncated)?;
    let version = u16::from_be_bytes([version[0], version[1]]);
    if u32::from(version) != FORMAT_VERSION {
        return Err(ArchiveError::UnsupportedVersion {
            found: version,
            supported: FORMAT_VERSION as u16,
        });
    }
    at += 2;
    let id_len = usize::from(*bytes.get(at).ok_or_else(truncated)?);
    at += 1;
    let id = bytes.get(at..at + id_len).ok_or_else(truncated)?;
    let id = std::str::from_utf8(id)
        .map_err(|_| ArchiveError::Corrupt("the key id in the header is not text".into()))?
        .to_string();
    at += id_len;
    if bytes.len() < at + NONCE_LEN + TAG_LEN {
        return Err(truncated());
    }
    Ok((id, at))
}

/// `{apiVersion, kind, namespace, name, sha256}` of a normalised object, or what it lacks.
fn entry_of(object: &Value) -> Result<ObjectEntry, String> {
    let text = |v: Option<&Value>, what: &str| match v.and_then(Value::as_str) {
        Some(s) if !s.is_empty() => Ok(s.to_string()),
        _ => Err(format!("it has no {what}")),
    };
    let meta = object.get("metadata");
    let mut buf = Vec::new();
    write_canonical(object, &mut buf);
    Ok(ObjectEntry {
        api_version: text(object.get("apiVersion"), "apiVersion")?,
        kind: text(object.get("kind"), "kind")?,
        namespace: meta
            .and_then(|m| m.get("namespace"))
            .and_then(Value::as_str)
            .map(str::to_string),
        name: text(meta.and_then(|m| m.get("name")), "metadata.name")?,
        sha256: hex(&Sha256::digest(&buf)),
    })
}

fn counts(entries: &[ObjectEntry]) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for e in entries {
        *counts.entry(e.type_key()).or_insert(0) += 1;
    }
    counts
}

/// JSON with object keys sorted and no whitespace, written here rather than relying on
/// `serde_json::Map` being sorted: a crate anywhere in the build that turns on serde_json's
/// `preserve_order` would otherwise change every checksum.
fn write_canonical(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(map) => {
            let mut fields: Vec<(&String, &Value)> = map.iter().collect();
            fields.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (k, v)) in fields.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, k).expect("strings always serialise");
                out.push(b':');
                write_canonical(v, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        scalar => serde_json::to_writer(&mut *out, scalar).expect("scalars always serialise"),
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

pub(super) fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn at() -> jiff::Timestamp {
        "2026-01-02T03:04:05Z".parse().unwrap()
    }

    fn config_map(ns: &str, name: &str, value: &str) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": ns, "uid": format!("uid-{name}"), "resourceVersion": "7"},
            "data": {"value": value},
        })
    }

    /// A small tenant: two ConfigMaps, a Secret, a Deployment with status, a claim, given out
    /// of order and with server fields, as an export would read them.
    fn objects() -> Vec<Value> {
        vec![
            json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "namespace": "acme-prod", "generation": 3},
                "spec": {"replicas": 2},
                "status": {"readyReplicas": 2},
            }),
            config_map("acme-prod", "b", "two"),
            json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "db", "namespace": "acme-prod"},
                "type": "Opaque", "data": {"password": "aHVudGVyMg=="},
            }),
            config_map("acme-prod", "a", "one"),
            json!({
                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": "data", "namespace": "acme-dev"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
                "status": {"phase": "Bound"},
            }),
        ]
    }

    fn bundle() -> Bundle {
        Bundle::new(
            "acme",
            Some("pro"),
            json!({"displayName": "ACME"}),
            objects(),
            at(),
        )
        .unwrap()
    }

    fn key(byte: u8) -> Key {
        Key::from_bytes([byte; 32])
    }

    fn names(b: &Bundle) -> Vec<String> {
        b.manifest.objects.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_bundle_sorts_counts_and_normalises_its_objects() {
        let b = bundle();
        assert_eq!(
            names(&b),
            [
                "Deployment acme-prod/web (apps/v1)",
                "ConfigMap acme-prod/a (v1)",
                "ConfigMap acme-prod/b (v1)",
                "PersistentVolumeClaim acme-dev/data (v1)",
                "Secret acme-prod/db (v1)",
            ]
        );
        assert_eq!(
            b.manifest.counts,
            BTreeMap::from([
                ("apps/v1/Deployment".to_string(), 1),
                ("v1/ConfigMap".to_string(), 2),
                ("v1/PersistentVolumeClaim".to_string(), 1),
                ("v1/Secret".to_string(), 1),
            ])
        );
        assert_eq!(
            b.objects[1],
            json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "namespace": "acme-prod"}, "data": {"value": "one"}})
        );
        assert_eq!(b.manifest.created_at, "2026-01-02T03:04:05Z");
        assert_eq!(b.manifest.plan.as_deref(), Some("pro"));
        assert!(!b.manifest.volume_data_included);
        assert_eq!(
            b.manifest.volume_note().as_deref(),
            Some(
                "1 PersistentVolumeClaim(s) archived with their spec only: volume data is not included"
            )
        );
        verify(&b).unwrap();
    }

    #[test]
    fn the_same_objects_make_the_same_checksums_whatever_their_order_and_server_fields() {
        let mut shuffled = objects();
        shuffled.reverse();
        shuffled[0]["metadata"]["resourceVersion"] = json!("99");
        let other = Bundle::new("acme", Some("pro"), json!({}), shuffled, at()).unwrap();
        assert_eq!(other.manifest.objects, bundle().manifest.objects);
        assert_eq!(other.manifest.sha256, bundle().manifest.sha256);
        assert_eq!(
            object_sha256(&objects()[3]),
            bundle().manifest.objects[1].sha256
        );
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level_and_has_no_whitespace() {
        let mut out = Vec::new();
        write_canonical(
            &json!({"b": [{"z": 1, "a": "x\ny"}], "a": null, "c": 1.5}),
            &mut out,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a":null,"b":[{"a":"x\ny","z":1}],"c":1.5}"#
        );
        // The whole checksum is defined by its lines: one entry, written out by hand.
        let entry = ObjectEntry {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: Some("acme-prod".into()),
            name: "a".into(),
            sha256: "00".into(),
        };
        assert_eq!(
            whole_checksum(&[entry]),
            sha256_hex(b"00\tv1\tConfigMap\tacme-prod\ta\n")
        );
    }

    #[test]
    fn normalise_strips_exactly_the_server_fields() {
        let live = json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "web",
                "namespace": "acme-prod",
                "labels": {"app": "web"},
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}", "team": "a"},
                "finalizers": ["example.com/keep"],
                "generateName": "web-",
                "uid": "1234",
                "resourceVersion": "42",
                "managedFields": [{"manager": "kubectl"}],
                "creationTimestamp": "2026-01-01T00:00:00Z",
                "generation": 3,
                "selfLink": "/apis/apps/v1/namespaces/acme-prod/deployments/web",
                "deletionTimestamp": "2026-01-02T00:00:00Z",
                "deletionGracePeriodSeconds": 30,
                "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": "9"}],
            },
            "spec": {"replicas": 2, "template": {"metadata": {"creationTimestamp": null}}},
            "status": {"replicas": 2},
        });
        assert_eq!(
            normalise(&live),
            json!({
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {
                    "name": "web",
                    "namespace": "acme-prod",
                    "labels": {"app": "web"},
                    "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}", "team": "a"},
                    "finalizers": ["example.com/keep"],
                    "generateName": "web-",
                },
                "spec": {"replicas": 2, "template": {"metadata": {"creationTimestamp": null}}},
            })
        );
        // Not an object, or no metadata: left as it is.
        assert_eq!(normalise(&json!([1])), json!([1]));
        assert_eq!(
            normalise(&json!({"kind": "X", "status": 1})),
            json!({"kind": "X"})
        );
    }

    #[test]
    fn a_sealed_bundle_opens_to_the_same_bundle() {
        let b = bundle();
        let k = key(1);
        let sealed = seal(&b, &k);
        assert_eq!(&sealed[..6], b"LLARCH");
        assert_eq!(&sealed[6..8], &[0, 1]);
        assert_eq!(usize::from(sealed[8]), k.id().len());
        assert_eq!(&sealed[9..9 + k.id().len()], k.id().as_bytes());
        // Encrypted: no object's text shows through.
        assert!(!sealed.windows(6).any(|w| w == b"acme-p"));
        let opened = open(&sealed, &KeyRing::new(k.clone())).unwrap();
        assert_eq!(opened.objects, b.objects);
        assert_eq!(
            opened.manifest,
            Manifest {
                key_id: k.id().to_string(),
                ..b.manifest
            }
        );
        // A fresh nonce every time.
        assert_ne!(seal(&bundle(), &k), sealed);
    }

    #[test]
    fn an_empty_tenant_makes_an_archive_too() {
        let b = Bundle::new("empty", None, json!({}), vec![], at()).unwrap();
        let opened = open(&seal(&b, &key(1)), &KeyRing::new(key(1))).unwrap();
        assert!(opened.objects.is_empty());
        assert_eq!(opened.manifest.sha256, sha256_hex(b""));
        assert_eq!(opened.manifest.volume_note(), None);
    }

    #[test]
    fn an_object_changed_before_sealing_is_named() {
        let mut b = bundle();
        b.objects[2]["data"]["value"] = json!("evil");
        b.objects[4]["metadata"]["labels"] = json!({"x": "y"});
        let err = open(&seal(&b, &key(1)), &KeyRing::new(key(1))).unwrap_err();
        let ArchiveError::ObjectChecksum { objects } = &err else {
            panic!("{err}")
        };
        assert_eq!(
            objects,
            &["ConfigMap acme-prod/b (v1)", "Secret acme-prod/db (v1)"]
        );
        assert!(
            err.to_string()
                .contains("ConfigMap acme-prod/b (v1), Secret acme-prod/db (v1) differ")
        );
        assert_eq!(err.reason(), "ArchiveChecksumMismatch");

        // An object swapped for another one under the same checksum entry.
        let mut b = bundle();
        b.objects.swap(1, 2);
        let err = open(&seal(&b, &key(1)), &KeyRing::new(key(1))).unwrap_err();
        let ArchiveError::ObjectChecksum { objects } = err else {
            panic!("{err}")
        };
        assert_eq!(
            objects,
            ["ConfigMap acme-prod/a (v1)", "ConfigMap acme-prod/b (v1)"]
        );
    }

    #[test]
    fn counts_and_the_whole_checksum_are_checked() {
        let ring = KeyRing::new(key(1));
        let mut b = bundle();
        b.objects.pop();
        let err = open(&seal(&b, &key(1)), &ring).unwrap_err();
        assert!(
            matches!(&err, ArchiveError::CountMismatch { details } if details == &["4 objects, manifest lists 5"]),
            "{err}"
        );

        let mut b = bundle();
        b.manifest.counts.insert("v1/ConfigMap".into(), 3);
        let err = open(&seal(&b, &key(1)), &ring).unwrap_err();
        assert!(
            matches!(&err, ArchiveError::CountMismatch { details } if details == &["v1/ConfigMap: 2 objects, manifest says 3"]),
            "{err}"
        );

        let mut b = bundle();
        let real = b.manifest.sha256.clone();
        b.manifest.sha256 = "0".repeat(64);
        let err = open(&seal(&b, &key(1)), &ring).unwrap_err();
        assert!(
            matches!(&err, ArchiveError::WholeChecksum { expected, found } if *expected == "0".repeat(64) && *found == real),
            "{err}"
        );
    }

    #[test]
    fn the_wrong_key_is_named_and_refused() {
        let sealed = seal(&bundle(), &key(1));
        let err = open(&sealed, &KeyRing::new(key(2))).unwrap_err();
        let ArchiveError::UnknownKey { key_id, known } = &err else {
            panic!("{err}")
        };
        assert_eq!(key_id, key(1).id());
        assert_eq!(known, key(2).id());
        assert!(
            err.to_string()
                .contains(&format!("put the entry key-{} back", key(1).id()))
        );

        // The right id, the wrong bytes (a user-provided Secret that was replaced).
        let impostor = Key::with_id(key(1).id(), [2; 32]).unwrap();
        let err = open(&sealed, &KeyRing::new(impostor)).unwrap_err();
        assert!(
            matches!(&err, ArchiveError::Decrypt { key_id } if key_id == key(1).id()),
            "{err}"
        );
        assert_eq!(err.reason(), "ArchiveKeyWrong");
    }

    #[test]
    fn the_key_id_is_read_without_the_key() {
        assert_eq!(key_id_of(&seal(&bundle(), &key(4))).unwrap(), key(4).id());
        assert!(matches!(
            key_id_of(b"nope"),
            Err(ArchiveError::NotAnArchive)
        ));
    }

    #[test]
    fn rotated_keys_still_open_old_archives() {
        let (old, new) = (key(1), key(2));
        let sealed_old = seal(&bundle(), &old);
        let ring = KeyRing {
            current: new.clone(),
            others: vec![old.clone()],
        };
        assert_eq!(open(&sealed_old, &ring).unwrap().manifest.key_id, old.id());
        let sealed_new = seal(&bundle(), &ring.current);
        assert_eq!(open(&sealed_new, &ring).unwrap().manifest.key_id, new.id());
    }

    #[test]
    fn damaged_bytes_are_an_error_never_a_panic() {
        let ring = KeyRing::new(key(1));
        let small = Bundle::new(
            "t",
            None,
            json!({}),
            vec![config_map("t-a", "c", "v")],
            at(),
        )
        .unwrap();
        let sealed = seal(&small, &key(1));
        for len in 0..sealed.len() {
            assert!(open(&sealed[..len], &ring).is_err(), "truncated to {len}");
        }
        for at in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[at] ^= 0x40;
            assert!(open(&bad, &ring).is_err(), "byte {at} flipped");
        }
        assert!(matches!(open(b"", &ring), Err(ArchiveError::NotAnArchive)));
        assert!(matches!(
            open(b"PK\x03\x04 a zip", &ring),
            Err(ArchiveError::NotAnArchive)
        ));
        assert!(matches!(
            open(b"LLARCH\x00\x02", &ring),
            Err(ArchiveError::UnsupportedVersion { found: 2, .. })
        ));
        assert!(matches!(
            open(b"LLARCH\x00\x01\x05ab", &ring),
            Err(ArchiveError::Corrupt(_))
        ));
        let mut extended = sealed.clone();
        extended.push(0);
        assert!(matches!(
            open(&extended, &ring),
            Err(ArchiveError::Decrypt { .. })
        ));
    }

    #[test]
    fn objects_that_cannot_be_archived_are_refused() {
        let err = Bundle::new(
            "t",
            None,
            json!({}),
            vec![config_map("n", "a", "1"), json!({"kind": "X"})],
            at(),
        )
        .unwrap_err();
        assert!(
            matches!(&err, ArchiveError::InvalidObject { index: 1, reason } if reason == "it has no apiVersion"),
            "{err}"
        );
        let err = Bundle::new(
            "t",
            None,
            json!({}),
            vec![json!({"apiVersion": "v1", "kind": "X", "metadata": {}})],
            at(),
        )
        .unwrap_err();
        assert!(
            matches!(&err, ArchiveError::InvalidObject { index: 0, reason } if reason == "it has no metadata.name"),
            "{err}"
        );
        let twice = vec![config_map("n", "a", "1"), config_map("n", "a", "2")];
        let err = Bundle::new("t", None, json!({}), twice, at()).unwrap_err();
        assert!(
            matches!(&err, ArchiveError::DuplicateObject { object } if object == "ConfigMap n/a (v1)"),
            "{err}"
        );
    }

    #[test]
    fn a_thousand_objects_round_trip() {
        let many: Vec<Value> = (0..1000)
            .map(|i| {
                let mut cm = config_map(
                    &format!("acme-ns{}", i % 7),
                    &format!("cm-{i:04}"),
                    &"x".repeat(2000),
                );
                cm["data"]["index"] = json!(i.to_string());
                cm
            })
            .collect();
        let b = Bundle::new("acme", None, json!({}), many, at()).unwrap();
        let sealed = seal(&b, &key(3));
        // Compressed: the repeated values shrink to a fraction of their 2 MB.
        assert!(sealed.len() < 500_000, "{} bytes", sealed.len());
        let opened = open(&sealed, &KeyRing::new(key(3))).unwrap();
        assert_eq!(opened.objects.len(), 1000);
        assert_eq!(opened.manifest.counts["v1/ConfigMap"], 1000);
    }
}
