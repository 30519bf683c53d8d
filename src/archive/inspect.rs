//! `landlord archive list | show`: what a store holds, and one archive's objects as YAML, so
//! that an archive can be read, checked or restored by hand (`landlord archive show LOCATION
//! | kubectl apply --server-side -f -`) without the operator.

use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::Api;

use super::{ArchiveError, ArchiveStore, KeyRing, S3Options, open, ring_from_secret_data};

/// S3 settings from the same environment variables the operator reads.
pub fn s3_from_env() -> S3Options {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    S3Options {
        endpoint: env("LANDLORD_ARCHIVE_S3_ENDPOINT"),
        region: env("AWS_REGION"),
        access_key_id: env("AWS_ACCESS_KEY_ID"),
        secret_access_key: env("AWS_SECRET_ACCESS_KEY"),
        session_token: env("AWS_SESSION_TOKEN"),
        allow_http: env("LANDLORD_ARCHIVE_S3_ALLOW_HTTP").is_some_and(|v| v == "true"),
    }
}

/// One line per archive: time, tenant, size, location.
pub async fn list(store: &ArchiveStore) -> Result<String, ArchiveError> {
    let mut out = String::new();
    for a in store.list().await? {
        out.push_str(&format!(
            "{}  {}  {} bytes  {}\n",
            a.archived_at, a.tenant, a.bytes, a.location
        ));
    }
    Ok(out)
}

/// The keys in `namespace/name`, read only: a missing Secret is an error here, never created.
pub async fn keys(client: &Client, namespace: &str, name: &str) -> anyhow::Result<KeyRing> {
    let secret = Api::<Secret>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await?
        .ok_or_else(|| {
            anyhow::anyhow!("Secret {namespace}/{name} with the archive keys does not exist")
        })?;
    ring_from_secret_data(&secret.data.unwrap_or_default())
        .map_err(|e| anyhow::anyhow!("Secret {namespace}/{name}: {e}"))
}

/// The archive at `location`, opened and verified: its manifest, or its objects as a YAML
/// stream ready for `kubectl apply`.
pub async fn show(
    store: &ArchiveStore,
    location: &str,
    keys: &KeyRing,
    manifest: bool,
) -> anyhow::Result<String> {
    let bundle = open(&store.get(location).await?, keys)?;
    if manifest {
        return Ok(serde_saphyr::to_string(&bundle.manifest)?);
    }
    let mut out = String::new();
    for object in &bundle.objects {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(object)?);
    }
    Ok(out)
}
