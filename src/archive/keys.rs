//! The archive key and where it is kept: a Kubernetes Secret in the operator's namespace.
//!
//! The Secret holds every key that has sealed an archive still in the store, and which of them
//! seals new ones:
//!
//! ```yaml
//! data:
//!   key-3f9a0c1d2e4b5a69: <32 random bytes>   # or the same as 64 hex characters
//!   key-0b7e51c2d9a4f380: <32 random bytes>
//!   current: 3f9a0c1d2e4b5a69                 # the id new archives are sealed with
//! ```
//!
//! **Rotation** adds a new `key-<id>` entry and points `current` at it ([`rotate`] does it, or
//! by hand with `kubectl edit`); old entries stay, since every archive names the key that
//! sealed it and is opened with that one. Remove an old entry only once no archive sealed
//! with it is left (the plain `.manifest.json` beside each archive names its key id).
//!
//! A user-provided Secret in this shape works as it is; an id may be any name of Secret-key
//! characters (`[-._a-zA-Z0-9]`, at most 64). Generated ids are the first 16 hex characters
//! of the key's sha256, so an id never reveals the key but tells two keys apart.

use std::collections::BTreeMap;
use std::fmt;

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Generate, Key as AeadKey};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, PostParams};

use super::ArchiveError;
use super::bundle::sha256_hex;
use crate::naming::{FIELD_MANAGER, MANAGED_BY};

const CURRENT: &str = "current";
const KEY_PREFIX: &str = "key-";
const MAX_ID_LEN: usize = 64;

/// An AES-256 key and the id archives record to find it again.
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    id: String,
    bytes: [u8; 32],
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id)
            .field("bytes", &"<redacted>")
            .finish()
    }
}

impl Key {
    /// A new key from the operating system's random source.
    pub fn generate() -> Key {
        let key = AeadKey::<Aes256Gcm>::generate();
        Key::from_bytes(key.into())
    }

    /// A key whose id is derived from its bytes (the first 16 hex characters of their sha256).
    pub fn from_bytes(bytes: [u8; 32]) -> Key {
        Key {
            id: sha256_hex(&bytes)[..16].to_string(),
            bytes,
        }
    }

    /// A key under an id of the caller's choice, or why the id cannot name a Secret entry.
    pub fn with_id(id: &str, bytes: [u8; 32]) -> Result<Key, String> {
        check_id(id)?;
        Ok(Key {
            id: id.to_string(),
            bytes,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    pub(super) fn cipher_key(&self) -> AeadKey<Aes256Gcm> {
        self.bytes.into()
    }
}

/// The key new archives are sealed with, and the older ones that still open old archives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRing {
    pub current: Key,
    pub others: Vec<Key>,
}

impl KeyRing {
    pub fn new(current: Key) -> KeyRing {
        KeyRing {
            current,
            others: Vec::new(),
        }
    }

    pub fn get(&self, id: &str) -> Option<&Key> {
        std::iter::once(&self.current)
            .chain(&self.others)
            .find(|k| k.id == id)
    }

    /// Every key id, the current one first.
    pub fn ids(&self) -> Vec<String> {
        std::iter::once(&self.current)
            .chain(&self.others)
            .map(|k| k.id.clone())
            .collect()
    }
}

/// The ring kept in the Secret `namespace/name`, creating the Secret with a new key when it
/// does not exist. Created, never applied or replaced: when two replicas race, one create
/// wins, the other gets AlreadyExists and reads the winner's key, so no key that may already
/// have sealed an archive is ever overwritten.
pub async fn load_or_create(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<KeyRing, ArchiveError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let api_error = |e: kube::Error| ArchiveError::KeySecret {
        namespace: namespace.to_string(),
        name: name.to_string(),
        source: Box::new(e),
    };
    let from_secret = |secret: Secret| {
        ring_from_secret_data(&secret.data.unwrap_or_default()).map_err(|reason| {
            ArchiveError::BadKeySecret {
                namespace: namespace.to_string(),
                name: name.to_string(),
                reason,
            }
        })
    };
    if let Some(secret) = api.get_opt(name).await.map_err(api_error)? {
        return from_secret(secret);
    }
    let ring = KeyRing::new(Key::generate());
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            labels: Some(BTreeMap::from([(
                MANAGED_BY.0.to_string(),
                MANAGED_BY.1.to_string(),
            )])),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".to_string()),
        data: Some(secret_data(&ring)),
        ..Secret::default()
    };
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PostParams::default()
    };
    match api.create(&params, &secret).await {
        Ok(_) => Ok(ring),
        Err(kube::Error::Api(status)) if status.is_already_exists() || status.code == 409 => {
            from_secret(api.get(name).await.map_err(api_error)?)
        }
        Err(e) => Err(api_error(e)),
    }
}

/// Rotation: a new key becomes current in the Secret `namespace/name`, the old ones stay.
/// A replace with the Secret's resourceVersion, so a concurrent change fails with a conflict
/// (an [`ArchiveError::KeySecret`]) instead of being lost; call again to retry.
pub async fn rotate(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<KeyRing, ArchiveError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let api_error = |e: kube::Error| ArchiveError::KeySecret {
        namespace: namespace.to_string(),
        name: name.to_string(),
        source: Box::new(e),
    };
    let mut secret = api.get(name).await.map_err(api_error)?;
    let old =
        ring_from_secret_data(&secret.data.clone().unwrap_or_default()).map_err(|reason| {
            ArchiveError::BadKeySecret {
                namespace: namespace.to_string(),
                name: name.to_string(),
                reason,
            }
        })?;
    let mut others = vec![old.current];
    others.extend(old.others);
    let ring = KeyRing {
        current: Key::generate(),
        others,
    };
    let data = secret.data.get_or_insert_with(BTreeMap::new);
    data.insert(
        format!("{KEY_PREFIX}{}", ring.current.id),
        ByteString(ring.current.bytes.to_vec()),
    );
    data.insert(
        CURRENT.to_string(),
        ByteString(ring.current.id.clone().into_bytes()),
    );
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PostParams::default()
    };
    api.replace(name, &params, &secret)
        .await
        .map_err(api_error)?;
    Ok(ring)
}

/// The Secret `data` that holds `ring`.
pub fn secret_data(ring: &KeyRing) -> BTreeMap<String, ByteString> {
    let mut data: BTreeMap<String, ByteString> = std::iter::once(&ring.current)
        .chain(&ring.others)
        .map(|k| {
            (
                format!("{KEY_PREFIX}{}", k.id),
                ByteString(k.bytes.to_vec()),
            )
        })
        .collect();
    data.insert(
        CURRENT.to_string(),
        ByteString(ring.current.id.clone().into_bytes()),
    );
    data
}

/// The ring a Secret's `data` holds, or what is wrong with it. Each `key-<id>` holds 32 bytes,
/// raw or as 64 hex characters (`openssl rand -hex 32`; a trailing newline is ignored);
/// `current` names one of them, and may be left out when there is only one. Other entries
/// are ignored.
pub fn ring_from_secret_data(data: &BTreeMap<String, ByteString>) -> Result<KeyRing, String> {
    let mut keys = Vec::new();
    for (entry, value) in data {
        let Some(id) = entry.strip_prefix(KEY_PREFIX) else {
            continue;
        };
        let bytes = key_bytes(&value.0).ok_or_else(|| {
            format!(
                "{entry} holds {} bytes; it must hold 32 random bytes or 64 hex characters",
                value.0.len()
            )
        })?;
        keys.push(Key::with_id(id, bytes).map_err(|e| format!("{entry}: {e}"))?);
    }
    if keys.is_empty() {
        return Err(
            "it holds no key-<id> entry; delete it to have Landlord create one, or add a key"
                .to_string(),
        );
    }
    let current = match data.get(CURRENT) {
        Some(id) => std::str::from_utf8(&id.0)
            .map_err(|_| "current is not text".to_string())?
            .trim()
            .to_string(),
        None if keys.len() == 1 => keys[0].id.clone(),
        None => {
            return Err(format!(
                "it has no `current` entry naming the key to seal with (keys: {})",
                keys.iter()
                    .map(|k| k.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    };
    let Some(at) = keys.iter().position(|k| k.id == current) else {
        return Err(format!(
            "current names {current}, but there is no entry {KEY_PREFIX}{current}"
        ));
    };
    let current = keys.remove(at);
    Ok(KeyRing {
        current,
        others: keys,
    })
}

fn key_bytes(value: &[u8]) -> Option<[u8; 32]> {
    if let Ok(raw) = <[u8; 32]>::try_from(value) {
        return Some(raw);
    }
    let text = std::str::from_utf8(value).ok()?.trim_end();
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn check_id(id: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
    if id.is_empty() || id.len() > MAX_ID_LEN || !id.chars().all(ok_char) {
        return Err(format!(
            "key id {id:?} must be 1 to {MAX_ID_LEN} characters of letters, digits, '-', '.' and '_'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Namespace;

    use super::*;

    fn data(entries: &[(&str, &[u8])]) -> BTreeMap<String, ByteString> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), ByteString(v.to_vec())))
            .collect()
    }

    #[test]
    fn generated_keys_differ_and_are_named_by_their_hash() {
        let (a, b) = (Key::generate(), Key::generate());
        assert_ne!(a.bytes(), b.bytes());
        assert_eq!(a.id(), &sha256_hex(a.bytes())[..16]);
        assert_eq!(Key::from_bytes([0; 32]).id(), "66687aadf862bd77");
        assert!(!format!("{a:?}").contains(&format!("{:?}", a.bytes())));
    }

    #[test]
    fn a_ring_is_read_from_raw_or_hex_entries() {
        let hex = "0101010101010101010101010101010101010101010101010101010101010101\n";
        let ring = ring_from_secret_data(&data(&[
            ("key-old", &[7; 32]),
            ("key-new", hex.as_bytes()),
            ("current", b"new"),
            ("README", b"ignored"),
        ]))
        .unwrap();
        assert_eq!(ring.current, Key::with_id("new", [1; 32]).unwrap());
        assert_eq!(ring.others, [Key::with_id("old", [7; 32]).unwrap()]);
        assert_eq!(ring.ids(), ["new", "old"]);
        assert_eq!(ring.get("old").map(Key::bytes), Some(&[7; 32]));
        assert_eq!(ring.get("gone"), None);
        // What secret_data writes reads back the same.
        assert_eq!(ring_from_secret_data(&secret_data(&ring)).unwrap(), ring);
        // One key needs no `current`.
        let ring = ring_from_secret_data(&data(&[("key-only", &[3; 32])])).unwrap();
        assert_eq!(ring.current.id(), "only");
    }

    #[test]
    fn a_bad_key_secret_says_what_is_wrong() {
        let err = |entries: &[(&str, &[u8])]| ring_from_secret_data(&data(entries)).unwrap_err();
        assert_eq!(
            err(&[("key-a", &[1; 31]), ("current", b"a")]),
            "key-a holds 31 bytes; it must hold 32 random bytes or 64 hex characters"
        );
        assert_eq!(
            err(&[("key-a", &[1; 32]), ("current", b"b")]),
            "current names b, but there is no entry key-b"
        );
        assert_eq!(
            err(&[("key-a", &[1; 32]), ("key-b", &[2; 32])]),
            "it has no `current` entry naming the key to seal with (keys: a, b)"
        );
        assert_eq!(
            err(&[("other", b"x")]),
            "it holds no key-<id> entry; delete it to have Landlord create one, or add a key"
        );
        assert!(
            err(&[("key-", &[1; 32])]).starts_with("key-: key id \"\" must be 1 to 64 characters")
        );
        assert!(Key::with_id("a/b", [0; 32]).is_err());
        assert!(Key::with_id(&"a".repeat(65), [0; 32]).is_err());
    }

    async fn server_with_namespace(ns: &str) -> (kube_test::RunningServer, kube::Client) {
        let server = kube_test::ApiServer::start().await.unwrap();
        let client = server.client().await.unwrap();
        let namespace = Namespace {
            metadata: ObjectMeta {
                name: Some(ns.to_string()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &namespace)
            .await
            .unwrap();
        (server, client)
    }

    #[tokio::test]
    async fn the_key_secret_is_created_once_and_then_read() {
        let (_server, client) = server_with_namespace("landlord").await;
        let first = load_or_create(&client, "landlord", "landlord-archive-key")
            .await
            .unwrap();
        let again = load_or_create(&client, "landlord", "landlord-archive-key")
            .await
            .unwrap();
        assert_eq!(first, again);
        assert!(first.others.is_empty());

        let secret = Api::<Secret>::namespaced(client, "landlord")
            .get("landlord-archive-key")
            .await
            .unwrap();
        assert_eq!(
            secret.metadata.labels.unwrap()["app.kubernetes.io/managed-by"],
            "landlord"
        );
        assert_eq!(secret.type_.as_deref(), Some("Opaque"));
        let data = secret.data.unwrap();
        assert_eq!(
            data.keys().collect::<Vec<_>>(),
            ["current", &format!("key-{}", first.current.id())]
        );
        assert_eq!(data["current"].0, first.current.id().as_bytes());
    }

    #[tokio::test]
    async fn racing_replicas_end_with_one_key() {
        let (_server, client) = server_with_namespace("landlord").await;
        let rings = futures::future::join_all(
            (0..4).map(|_| load_or_create(&client, "landlord", "landlord-archive-key")),
        )
        .await;
        let rings: Vec<KeyRing> = rings.into_iter().map(Result::unwrap).collect();
        assert!(rings.iter().all(|r| *r == rings[0]), "{rings:?}");
        let now = load_or_create(&client, "landlord", "landlord-archive-key")
            .await
            .unwrap();
        assert_eq!(now, rings[0]);
    }

    #[tokio::test]
    async fn a_user_provided_secret_is_used_and_rotation_keeps_old_keys() {
        let (_server, client) = server_with_namespace("ops").await;
        let api: Api<Secret> = Api::namespaced(client.clone(), "ops");
        let mine = Secret {
            metadata: ObjectMeta {
                name: Some("my-key".into()),
                ..ObjectMeta::default()
            },
            data: Some(data(&[("key-2026", &[9; 32]), ("current", b"2026")])),
            ..Secret::default()
        };
        api.create(&PostParams::default(), &mine).await.unwrap();
        let ring = load_or_create(&client, "ops", "my-key").await.unwrap();
        assert_eq!(ring, KeyRing::new(Key::with_id("2026", [9; 32]).unwrap()));

        let rotated = rotate(&client, "ops", "my-key").await.unwrap();
        assert_ne!(rotated.current.id(), "2026");
        assert_eq!(rotated.others, std::slice::from_ref(&ring.current));
        assert_eq!(
            load_or_create(&client, "ops", "my-key").await.unwrap(),
            rotated
        );

        // A broken Secret is reported, not replaced.
        let broken = Secret {
            metadata: ObjectMeta {
                name: Some("broken".into()),
                ..ObjectMeta::default()
            },
            data: Some(data(&[("key-a", b"short"), ("current", b"a")])),
            ..Secret::default()
        };
        api.create(&PostParams::default(), &broken).await.unwrap();
        let err = load_or_create(&client, "ops", "broken").await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "the archive key Secret ops/broken is not usable: key-a holds 5 bytes; it must hold 32 random bytes or 64 hex characters"
        );
        assert_eq!(
            api.get("broken").await.unwrap().data.unwrap()["key-a"].0,
            b"short"
        );
    }
}
