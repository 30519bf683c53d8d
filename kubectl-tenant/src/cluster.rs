//! The plugin's I/O with the API server: the client from `--kubeconfig`/`--context`, and
//! Tenants read as raw objects, so that `-o yaml` shows every field the server holds
//! (including ones newer than this plugin) while the commands read typed [`Tenant`]s.

use std::path::Path;

use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::ApiResource;
use kube::{Client, Config};
use landlord::api::Tenant;
use serde_json::Value;

use crate::failure::{self, Failure};

/// The field manager every write of the plugin uses.
pub const FIELD_MANAGER: &str = "kubectl-tenant";

/// A client as kubectl would build it: `--kubeconfig`, else `$KUBECONFIG` or
/// `~/.kube/config`, else the in-cluster config; `--context` picks a context.
pub async fn client(kubeconfig: Option<&Path>, context: Option<&str>) -> Result<Client, Failure> {
    let options = KubeConfigOptions {
        context: context.map(str::to_string),
        ..KubeConfigOptions::default()
    };
    let unusable = |e: &dyn std::error::Error| {
        Failure::new(format!(
            "cannot use the kubeconfig: {}; check --kubeconfig and --context",
            failure::chain(e)
        ))
    };
    let config = match kubeconfig {
        Some(path) => {
            let file = Kubeconfig::read_from(path).map_err(|e| {
                Failure::new(format!(
                    "cannot read kubeconfig {}: {}",
                    path.display(),
                    failure::chain(&e)
                ))
            })?;
            Config::from_custom_kubeconfig(file, &options)
                .await
                .map_err(|e| unusable(&e))?
        }
        None if context.is_some() => Config::from_kubeconfig(&options)
            .await
            .map_err(|e| unusable(&e))?,
        None => Config::infer().await.map_err(|e| unusable(&e))?,
    };
    Client::try_from(config).map_err(|e| unusable(&e))
}

/// A Tenant as the server holds it, and the same read through Landlord's types.
#[derive(Clone, Debug)]
pub struct Fetched {
    pub raw: Value,
    pub tenant: Tenant,
}

impl Fetched {
    pub fn from_raw(mut raw: Value) -> Result<Self, Failure> {
        // List items may come without their type; the typed view needs it.
        raw["apiVersion"] = "landlord.dev/v1alpha1".into();
        raw["kind"] = "Tenant".into();
        let tenant = serde_json::from_value(raw.clone()).map_err(|e| {
            Failure::new(format!(
                "the server sent a Tenant this plugin cannot read ({e}); is the plugin older \
                 than the operator?"
            ))
        })?;
        Ok(Self { raw, tenant })
    }

    /// `status.migration.lastError`, read from the raw object so that it shows whether or
    /// not Landlord's types of this build know the field.
    pub fn migration_error(&self) -> Option<&str> {
        self.raw
            .pointer("/status/migration/lastError")
            .and_then(Value::as_str)
    }

    pub fn name(&self) -> &str {
        self.tenant.metadata.name.as_deref().unwrap_or_default()
    }
}

/// Tenants through the dynamic API: raw JSON in, raw JSON out.
pub fn tenants(client: &Client) -> Api<DynamicObject> {
    Api::all_with(client.clone(), &ApiResource::erase::<Tenant>(&()))
}

fn to_fetched(object: DynamicObject) -> Result<Fetched, Failure> {
    let raw = serde_json::to_value(object).map_err(|e| Failure::new(e.to_string()))?;
    Fetched::from_raw(raw)
}

/// One tenant, `None` when there is none of that name.
pub async fn tenant_opt(client: &Client, name: &str) -> Result<Option<Fetched>, Failure> {
    match tenants(client).get(name).await {
        Ok(object) => to_fetched(object).map(Some),
        Err(e) if failure::is_not_found(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// One tenant; a missing one is the error that says how to find the others.
pub async fn tenant(client: &Client, name: &str) -> Result<Fetched, Failure> {
    tenant_opt(client, name)
        .await?
        .ok_or_else(|| failure::tenant_not_found(name))
}

/// Every tenant matching `selector`, sorted by name.
pub async fn all_tenants(client: &Client, selector: Option<&str>) -> Result<Vec<Fetched>, Failure> {
    let mut params = ListParams::default();
    if let Some(s) = selector {
        params = params.labels(s);
    }
    let list = tenants(client).list(&params).await?;
    let mut out = list
        .items
        .into_iter()
        .map(to_fetched)
        .collect::<Result<Vec<_>, _>>()?;
    out.sort_by(|a, b| a.name().cmp(b.name()));
    Ok(out)
}

/// Server-side apply of a Tenant document under the plugin's field manager.
pub async fn apply(
    client: &Client,
    name: &str,
    document: &Value,
    server_dry_run: bool,
    force: bool,
) -> Result<Fetched, Failure> {
    let mut params = PatchParams::apply(FIELD_MANAGER);
    params.dry_run = server_dry_run;
    params.force = force;
    match tenants(client)
        .patch(name, &params, &Patch::Apply(document))
        .await
    {
        Ok(object) => to_fetched(object),
        Err(kube::Error::Api(s)) if s.code == 409 => Err(Failure::new(format!(
            "{}; pass --force-conflicts to take these fields over (the other manager may set \
             them back: change them where it keeps them instead)",
            s.message
        ))),
        Err(e) => Err(e.into()),
    }
}

/// The object as `-o yaml|json` prints it: without `managedFields`, as kubectl does.
pub fn printable(raw: &Value) -> Value {
    let mut v = raw.clone();
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    v
}

/// Objects as `kubectl get -o yaml|json` prints a list.
pub fn printable_list(items: impl IntoIterator<Item = Value>) -> Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "List",
        "metadata": {"resourceVersion": ""},
        "items": items.into_iter().map(|v| printable(&v)).collect::<Vec<_>>(),
    })
}

/// `-o yaml` / `-o json` of one value.
pub fn render(value: &Value, yaml: bool) -> Result<String, Failure> {
    if yaml {
        serde_saphyr::to_string(value).map_err(|e| Failure::new(e.to_string()))
    } else {
        serde_json::to_string_pretty(value)
            .map(|s| s + "\n")
            .map_err(|e| Failure::new(e.to_string()))
    }
}
