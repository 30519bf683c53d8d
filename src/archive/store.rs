//! Where sealed archives live: a directory (`file:///var/lib/landlord/archives`, the default,
//! on the PVC the chart mounts) or an S3-compatible bucket (`s3://bucket/prefix`), through the
//! `object_store` crate.
//!
//! Layout: `<prefix>/<tenant>/<timestamp>.llarch`, the timestamp in UTC as
//! `20260102T030405.123Z` (sortable, and free of `:` which some stores and tools mishandle),
//! and beside it `<timestamp>.manifest.json`, the archive's [`Manifest`] in the clear. The
//! manifest holds the Tenant's spec (no more secret than the Tenant object), object names and
//! checksums, never object contents; it lets retention and people see what an archive holds
//! and which key sealed it without the key. [`ArchiveStore::list`] reads the paths, not the
//! manifests, so that purging works when no Tenant is left and even when a manifest is gone.
//!
//! Every write is one atomic put: the local store writes a temporary file and renames it, S3
//! makes an object visible only once its single PUT completes. So a half-written archive is
//! never listed; the manifest is written after the archive, so an archive may lack its
//! manifest (a crash in between) but a manifest never points at nothing that was not there.

use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};

use super::ArchiveError;
use super::bundle::{Manifest, key_id_of};

const ARCHIVE_SUFFIX: &str = ".llarch";
const MANIFEST_SUFFIX: &str = ".manifest.json";

/// How to reach an S3-compatible store. The caller fills it from the Secret named in the
/// chart's values (or the environment); any field left empty falls back to the standard
/// `AWS_*` environment variables and then to the instance or pod identity (IRSA).
#[derive(Clone, Default)]
pub struct S3Options {
    /// `https://minio.example:9000`; empty for AWS itself.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    /// Allow a plain-HTTP endpoint (in-cluster MinIO, tests).
    pub allow_http: bool,
}

impl std::fmt::Debug for S3Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Options")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .field("allow_http", &self.allow_http)
            .finish()
    }
}

/// One archive found in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredArchive {
    /// What [`ArchiveStore::get`] and [`ArchiveStore::delete`] take, and `status.archive.location`
    /// shows: `<store url>/<tenant>/<timestamp>.llarch`.
    pub location: String,
    pub tenant: String,
    pub archived_at: jiff::Timestamp,
    pub bytes: u64,
}

/// A directory or bucket of sealed archives.
#[derive(Clone, Debug)]
pub struct ArchiveStore {
    store: Arc<dyn ObjectStore>,
    /// Where archives start inside `store`: empty for a directory, the key prefix in a bucket.
    prefix: Path,
    /// The URL the store was made from, without a trailing `/`.
    url: String,
}

impl ArchiveStore {
    /// The store `url` names: `file:///absolute/dir` (created if missing) or
    /// `s3://bucket[/prefix]` reached with `s3`. Requests to S3 time out after 60 s and are
    /// retried three times within 30 s, so an unreachable store is reported quickly and the
    /// controller's own backoff takes over.
    pub fn from_url(url: &str, s3: &S3Options) -> Result<ArchiveStore, ArchiveError> {
        let bad = |reason: &str| ArchiveError::StoreUrl {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let url = url.trim_end_matches('/');
        if let Some(dir) = url.strip_prefix("file://") {
            if !dir.starts_with('/') {
                return Err(bad(
                    "a file:// URL needs an absolute path, as in file:///var/lib/landlord/archives",
                ));
            }
            std::fs::create_dir_all(dir).map_err(|e| bad(&format!("cannot create {dir}: {e}")))?;
            let local = LocalFileSystem::new_with_prefix(dir).map_err(|e| unavailable(url, e))?;
            return Ok(ArchiveStore {
                store: Arc::new(local),
                prefix: Path::default(),
                url: url.to_string(),
            });
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad("an s3:// URL names a bucket, as in s3://bucket/prefix"));
            }
            // reqwest is built without a TLS provider of its own (see Cargo.toml): use ring, the
            // one kube uses. Installing is a no-op when a provider is already installed.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let mut builder = AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .with_virtual_hosted_style_request(false)
                .with_retry(RetryConfig {
                    max_retries: 3,
                    retry_timeout: Duration::from_secs(30),
                    ..RetryConfig::default()
                })
                .with_client_options(
                    ClientOptions::new()
                        .with_timeout(Duration::from_secs(60))
                        .with_connect_timeout(Duration::from_secs(5)),
                )
                .with_allow_http(s3.allow_http);
            let given =
                |v: &Option<String>| v.as_deref().filter(|s| !s.is_empty()).map(str::to_string);
            if let Some(endpoint) = given(&s3.endpoint) {
                builder = builder.with_endpoint(endpoint);
            }
            if let Some(region) = given(&s3.region) {
                builder = builder.with_region(region);
            }
            if let Some(id) = given(&s3.access_key_id) {
                builder = builder.with_access_key_id(id);
            }
            if let Some(secret) = given(&s3.secret_access_key) {
                builder = builder.with_secret_access_key(secret);
            }
            if let Some(token) = given(&s3.session_token) {
                builder = builder.with_token(token);
            }
            let store = builder.build().map_err(|e| bad(&e.to_string()))?;
            return Ok(ArchiveStore {
                store: Arc::new(store),
                prefix: Path::from(prefix),
                url: url.to_string(),
            });
        }
        Err(bad("use file:///path/to/dir or s3://bucket/prefix"))
    }

    /// The URL the store was made from.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Writes `sealed` as `tenant`'s archive of `archived_at`, then `manifest` beside it with
    /// the key id of `sealed`'s header (a bundle's manifest has none until sealed), and returns
    /// the archive's location. Writing the same tenant and instant again replaces both.
    pub async fn put(
        &self,
        tenant: &str,
        archived_at: jiff::Timestamp,
        sealed: &[u8],
        manifest: &Manifest,
    ) -> Result<String, ArchiveError> {
        let manifest = Manifest {
            key_id: key_id_of(sealed)?,
            ..manifest.clone()
        };
        let stem = stamp(archived_at);
        let dir = self.prefix.clone().join(tenant);
        let archive = dir.clone().join(format!("{stem}{ARCHIVE_SUFFIX}"));
        self.store
            .put(&archive, PutPayload::from(sealed.to_vec()))
            .await
            .map_err(|e| unavailable(&self.url, e))?;
        let plain = serde_json::to_vec_pretty(&manifest).expect("a manifest always serialises");
        self.store
            .put(
                &dir.join(format!("{stem}{MANIFEST_SUFFIX}")),
                PutPayload::from(plain),
            )
            .await
            .map_err(|e| unavailable(&self.url, e))?;
        Ok(format!("{}/{tenant}/{stem}{ARCHIVE_SUFFIX}", self.url))
    }

    /// The sealed bytes at `location`.
    pub async fn get(&self, location: &str) -> Result<Vec<u8>, ArchiveError> {
        let path = self.path_of(location)?;
        self.read(&path, location).await
    }

    /// The plain manifest written beside the archive at `location`.
    pub async fn get_manifest(&self, location: &str) -> Result<Manifest, ArchiveError> {
        let path = manifest_path(&self.path_of(location)?);
        let bytes = self.read(&path, location).await?;
        serde_json::from_slice(&bytes).map_err(|e| {
            ArchiveError::Corrupt(format!("the manifest beside {location} is unreadable: {e}"))
        })
    }

    /// Every archive in the store, by tenant then time. Files that do not follow the layout
    /// are left out (and left alone).
    pub async fn list(&self) -> Result<Vec<StoredArchive>, ArchiveError> {
        self.list_under(&self.prefix).await
    }

    /// `tenant`'s archives, oldest first.
    pub async fn list_tenant(&self, tenant: &str) -> Result<Vec<StoredArchive>, ArchiveError> {
        self.list_under(&self.prefix.clone().join(tenant)).await
    }

    /// Removes the archive at `location` and its manifest. Removing what is already gone
    /// succeeds, so an interrupted purge can simply run again.
    pub async fn delete(&self, location: &str) -> Result<(), ArchiveError> {
        let path = self.path_of(location)?;
        for p in [path.clone(), manifest_path(&path)] {
            match self.store.delete(&p).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(unavailable(&self.url, e)),
            }
        }
        Ok(())
    }

    async fn read(&self, path: &Path, location: &str) -> Result<Vec<u8>, ArchiveError> {
        let got = match self.store.get(path).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(ArchiveError::NotFound {
                    location: location.to_string(),
                });
            }
            Err(e) => return Err(unavailable(&self.url, e)),
        };
        Ok(got
            .bytes()
            .await
            .map_err(|e| unavailable(&self.url, e))?
            .to_vec())
    }

    async fn list_under(&self, under: &Path) -> Result<Vec<StoredArchive>, ArchiveError> {
        let metas: Vec<_> = self
            .store
            .list(Some(under))
            .try_collect()
            .await
            .map_err(|e| unavailable(&self.url, e))?;
        let mut found: Vec<StoredArchive> = metas
            .into_iter()
            .filter_map(|meta| {
                let parts: Vec<String> = meta
                    .location
                    .prefix_match(&self.prefix)?
                    .map(|p| p.as_ref().to_string())
                    .collect();
                let [tenant, file] = parts.as_slice() else {
                    return None;
                };
                let archived_at = parse_stamp(file.strip_suffix(ARCHIVE_SUFFIX)?)?;
                Some(StoredArchive {
                    location: format!("{}/{tenant}/{file}", self.url),
                    tenant: tenant.clone(),
                    archived_at,
                    bytes: meta.size,
                })
            })
            .collect();
        found.sort_by(|a, b| (&a.tenant, a.archived_at).cmp(&(&b.tenant, b.archived_at)));
        Ok(found)
    }

    /// The store path of a location this store handed out.
    fn path_of(&self, location: &str) -> Result<Path, ArchiveError> {
        let foreign = || ArchiveError::ForeignLocation {
            location: location.to_string(),
            url: self.url.clone(),
        };
        let rest = location
            .strip_prefix(&self.url)
            .and_then(|r| r.strip_prefix('/'))
            .ok_or_else(foreign)?;
        let (tenant, file) = rest.split_once('/').ok_or_else(foreign)?;
        if tenant.is_empty() || file.contains('/') || !file.ends_with(ARCHIVE_SUFFIX) {
            return Err(foreign());
        }
        Ok(self.prefix.clone().join(tenant).join(file))
    }
}

fn manifest_path(archive: &Path) -> Path {
    let text = archive.as_ref();
    Path::from(format!(
        "{}{MANIFEST_SUFFIX}",
        text.strip_suffix(ARCHIVE_SUFFIX).unwrap_or(text)
    ))
}

fn unavailable(url: &str, e: object_store::Error) -> ArchiveError {
    ArchiveError::StoreUnavailable {
        url: url.to_string(),
        source: Box::new(e),
    }
}

/// `20260102T030405.123Z`.
fn stamp(t: jiff::Timestamp) -> String {
    let dt = t.to_zoned(jiff::tz::TimeZone::UTC).datetime();
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}.{:03}Z",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.subsec_nanosecond() / 1_000_000
    )
}

fn parse_stamp(s: &str) -> Option<jiff::Timestamp> {
    let b = s.as_bytes();
    if !s.is_ascii() || b.len() != 20 || b[8] != b'T' || b[15] != b'.' || b[19] != b'Z' {
        return None;
    }
    let rfc3339 = format!(
        "{}-{}-{}T{}:{}:{}.{}Z",
        &s[0..4],
        &s[4..6],
        &s[6..8],
        &s[9..11],
        &s[11..13],
        &s[13..15],
        &s[16..19]
    );
    rfc3339.parse().ok()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::archive::{Bundle, Key, KeyRing, open, seal};

    /// A directory of its own under the system temp dir, removed when dropped.
    struct TempDir(std::path::PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos();
            TempDir(
                std::env::temp_dir().join(format!("landlord-{tag}-{}-{nanos}", std::process::id())),
            )
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn t(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn stamps_sort_like_times_and_parse_back() {
        assert_eq!(
            stamp(t("2026-01-02T03:04:05.123456Z")),
            "20260102T030405.123Z"
        );
        assert_eq!(
            parse_stamp("20260102T030405.123Z"),
            Some(t("2026-01-02T03:04:05.123Z"))
        );
        assert_eq!(parse_stamp("20260102T030405Z"), None);
        assert_eq!(parse_stamp("2026010éT030405.12Z"), None);
        assert_eq!(parse_stamp("20261302T030405.123Z"), None);
    }

    #[test]
    fn urls_other_than_file_and_s3_are_refused() {
        let err = ArchiveStore::from_url("gs://bucket", &S3Options::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "archive store URL gs://bucket is not usable: use file:///path/to/dir or s3://bucket/prefix"
        );
        assert!(matches!(
            ArchiveStore::from_url("file://relative/dir", &S3Options::default()),
            Err(ArchiveError::StoreUrl { .. })
        ));
        assert!(matches!(
            ArchiveStore::from_url("s3:///prefix", &S3Options::default()),
            Err(ArchiveError::StoreUrl { .. })
        ));
    }

    #[tokio::test]
    async fn archives_round_trip_through_a_directory() {
        let dir = TempDir::new("archive-store");
        let url = format!("file://{}/archives", dir.0.display());
        let store = ArchiveStore::from_url(&url, &S3Options::default()).unwrap();
        assert!(dir.0.join("archives").is_dir(), "the directory is created");
        assert!(store.list().await.unwrap().is_empty());

        let key = Key::generate();
        let bundle = Bundle::new(
            "acme",
            Some("pro"),
            json!({"displayName": "ACME"}),
            vec![json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "acme-a"}})],
            t("2026-03-04T05:06:07Z"),
        )
        .unwrap();
        let sealed = seal(&bundle, &key);
        let first = store
            .put("acme", t("2026-03-04T05:06:07Z"), &sealed, &bundle.manifest)
            .await
            .unwrap();
        assert_eq!(first, format!("{url}/acme/20260304T050607.000Z.llarch"));
        let later = store
            .put(
                "acme",
                t("2026-03-05T00:00:00.5Z"),
                &sealed,
                &bundle.manifest,
            )
            .await
            .unwrap();
        let other = store
            .put("zeta", t("2026-01-01T00:00:00Z"), &sealed, &bundle.manifest)
            .await
            .unwrap();
        // Something that is not an archive is not listed.
        std::fs::write(dir.0.join("archives/acme/notes.txt"), "hello").unwrap();

        let opened = open(
            &store.get(&first).await.unwrap(),
            &KeyRing::new(key.clone()),
        )
        .unwrap();
        assert_eq!(opened.objects, bundle.objects);
        // The manifest beside it names the key, which the bundle's did not yet.
        assert_eq!(bundle.manifest.key_id, "");
        assert_eq!(
            store.get_manifest(&first).await.unwrap(),
            Manifest {
                key_id: key.id().to_string(),
                ..bundle.manifest.clone()
            }
        );
        let on_disk =
            std::fs::read(dir.0.join("archives/acme/20260304T050607.000Z.llarch")).unwrap();
        assert_eq!(on_disk, sealed);

        let listed = store.list().await.unwrap();
        let summary: Vec<(&str, &str, jiff::Timestamp, u64)> = listed
            .iter()
            .map(|a| {
                (
                    a.location.as_str(),
                    a.tenant.as_str(),
                    a.archived_at,
                    a.bytes,
                )
            })
            .collect();
        let n = sealed.len() as u64;
        assert_eq!(
            summary,
            [
                (first.as_str(), "acme", t("2026-03-04T05:06:07Z"), n),
                (later.as_str(), "acme", t("2026-03-05T00:00:00.5Z"), n),
                (other.as_str(), "zeta", t("2026-01-01T00:00:00Z"), n),
            ]
        );
        assert_eq!(store.list_tenant("zeta").await.unwrap(), listed[2..]);

        store.delete(&first).await.unwrap();
        store.delete(&first).await.unwrap();
        assert!(
            !dir.0
                .join("archives/acme/20260304T050607.000Z.manifest.json")
                .exists()
        );
        assert!(matches!(
            store.get(&first).await,
            Err(ArchiveError::NotFound { .. })
        ));
        assert_eq!(store.list_tenant("acme").await.unwrap().len(), 1);

        let err = store.get("s3://elsewhere/acme/x.llarch").await.unwrap_err();
        assert!(matches!(err, ArchiveError::ForeignLocation { .. }), "{err}");
        let err = store
            .get(&format!("{url}/acme/../../etc/passwd"))
            .await
            .unwrap_err();
        assert!(matches!(err, ArchiveError::ForeignLocation { .. }), "{err}");
    }

    #[tokio::test]
    async fn an_unwritable_directory_is_reported() {
        let dir = TempDir::new("archive-store-file");
        std::fs::create_dir_all(&dir.0).unwrap();
        std::fs::write(dir.0.join("file"), "not a directory").unwrap();
        let err = ArchiveStore::from_url(
            &format!("file://{}/file/archives", dir.0.display()),
            &S3Options::default(),
        )
        .unwrap_err();
        assert!(matches!(err, ArchiveError::StoreUrl { .. }), "{err}");
    }
}
