//! `create` and `update`: a Tenant's plan, display name, owners, namespaces and whether it is
//! enabled, written by server-side apply under the plugin's field manager.

use kube::Client;
use kube::api::Api;
use landlord::api::{Owner, TenantNamespace, TenantQuota};
use serde_json::{Value, json};

use crate::cli::{CreateArgs, DryRun, ObjectOutput, UpdateArgs, WriteArgs};
use crate::cluster::{self, Fetched};
use crate::document::{Change, document};
use crate::failure::{self, Failure};
use crate::format::tenant_ref;
use crate::transition::{Action, Decision};

/// `""`, `" (dry run)"` or `" (server dry run)"`, as kubectl marks what it did not store.
pub fn dry_run_suffix(mode: DryRun) -> &'static str {
    match mode {
        DryRun::None => "",
        DryRun::Client => " (dry run)",
        DryRun::Server => " (server dry run)",
    }
}

/// Send `doc` as `write` asks; `None` for a client dry run, which sends nothing.
pub async fn write(
    client: &Client,
    name: &str,
    doc: &Value,
    write: &WriteArgs,
) -> Result<Option<Fetched>, Failure> {
    match write.dry_run {
        DryRun::Client => Ok(None),
        mode => cluster::apply(
            client,
            name,
            doc,
            mode == DryRun::Server,
            write.force_conflicts,
        )
        .await
        .map(Some),
    }
}

async fn require_plan(client: &Client, plan: &str) -> Result<(), Failure> {
    let plans: Api<TenantQuota> = Api::all(client.clone());
    match plans.get(plan).await {
        Ok(_) => Ok(()),
        Err(e) if failure::is_not_found(&e) => Err(failure::plan_not_found(plan)),
        Err(e) => Err(e.into()),
    }
}

/// The spec changes `create` applies.
pub fn create_changes(args: &CreateArgs) -> Vec<Change> {
    let mut changes: Vec<Change> = vec![("quotaRef", json!(args.plan))];
    if let Some(d) = &args.display_name {
        changes.push(("displayName", json!(d)));
    }
    if !args.owners.is_empty() {
        let owners: Vec<Owner> = args
            .owners
            .iter()
            .map(|o| Owner {
                kind: o.kind,
                name: o.name.clone(),
                namespace: o.namespace.clone(),
            })
            .collect();
        changes.push(("owners", json!(owners)));
    }
    if !args.namespaces.is_empty() {
        let namespaces: Vec<TenantNamespace> = args
            .namespaces
            .iter()
            .map(|n| TenantNamespace {
                name: n.clone(),
                ..TenantNamespace::default()
            })
            .collect();
        changes.push(("namespaces", json!(namespaces)));
    }
    changes
}

fn print_result(
    name: &str,
    doc: &Value,
    written: Option<&Fetched>,
    output: Option<ObjectOutput>,
    message: &str,
) -> Result<(), Failure> {
    let text = match output {
        None => format!("{} {message}\n", tenant_ref(name)),
        Some(ObjectOutput::Name) => format!("{}\n", tenant_ref(name)),
        Some(o) => {
            let object = written.map_or_else(|| doc.clone(), |w| cluster::printable(&w.raw));
            cluster::render(&object, o == ObjectOutput::Yaml)?
        }
    };
    print!("{text}");
    Ok(())
}

pub async fn create(client: &Client, args: &CreateArgs) -> Result<(), Failure> {
    let name = &args.name;
    if cluster::tenant_opt(client, name).await?.is_some() {
        return Err(Failure::new(format!(
            "tenant {name:?} already exists; \"kubectl tenant update {name}\" changes it"
        )));
    }
    require_plan(client, &args.plan).await?;
    let doc = document(name, None, &create_changes(args));
    let written = write(client, name, &doc, &args.write).await?;
    let message = format!("created{}", dry_run_suffix(args.write.dry_run));
    print_result(name, &doc, written.as_ref(), args.output, &message)
}

pub async fn update(client: &Client, args: &UpdateArgs) -> Result<(), Failure> {
    let name = &args.name;
    let live = cluster::tenant(client, name).await?;
    let mut changes: Vec<Change> = Vec::new();
    if let Some(plan) = &args.plan {
        require_plan(client, plan).await?;
        changes.push(("quotaRef", json!(plan)));
    }
    if let Some(d) = &args.display_name {
        changes.push(("displayName", json!(d)));
    }
    if let Some(enabled) = args.enabled {
        let action = if enabled {
            Action::Resume
        } else {
            Action::Suspend
        };
        let decision = action
            .decide(name, live.tenant.spec.state)
            .map_err(Failure::new)?;
        if let Decision::Set(state) = decision {
            changes.push(("state", json!(state)));
        }
    }
    let doc = document(name, Some(&live.raw), &changes);
    let written = write(client, name, &doc, &args.write).await?;
    let after = written.as_ref().map_or(&doc["spec"], |w| &w.raw["spec"]);
    let unchanged = changes
        .iter()
        .all(|(field, value)| live.raw["spec"].get(*field) == Some(value))
        && (written.is_none() || *after == live.raw["spec"]);
    let message = format!(
        "{}{}",
        if unchanged { "unchanged" } else { "configured" },
        dry_run_suffix(args.write.dry_run)
    );
    print_result(name, &doc, written.as_ref(), args.output, &message)
}
