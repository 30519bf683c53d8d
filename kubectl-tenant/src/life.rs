//! The life commands (`suspend`, `resume`, `hibernate`, `wake`, `archive`, `restore`) and
//! `migrate`: each writes one field of the spec, then `--wait` follows the operator's work.

use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::Api;
use landlord::api::{MigrationMode, Phase, TenantState};
use serde_json::{Value, json};

use crate::cli::{MigrateArgs, StateArgs, WaitArgs, WriteArgs};
use crate::cluster::{self, Fetched};
use crate::document::document;
use crate::edit::{dry_run_suffix, write};
use crate::failure::{self, Failure};
use crate::follow::follow;
use crate::format::tenant_ref;
use crate::progress::Goal;
use crate::transition::{Action, Decision};

/// The phase a tenant reports once it is in `state`.
pub fn phase_of(state: TenantState) -> Phase {
    match state {
        TenantState::Active => Phase::Active,
        TenantState::Suspended => Phase::Suspended,
        TenantState::Hibernated => Phase::Hibernated,
        TenantState::Archived => Phase::Archived,
    }
}

/// Write one spec field (unless it already has `value`) and return the generation to follow.
async fn set_field(
    client: &Client,
    live: &Fetched,
    field: &'static str,
    value: Value,
    write_args: &WriteArgs,
    said: &str,
) -> Result<i64, Failure> {
    let name = live.name();
    let generation = live.tenant.metadata.generation.unwrap_or(0);
    if live.raw["spec"].get(field) == Some(&value) {
        println!("{}: spec.{field} is already {said}", tenant_ref(name));
        return Ok(generation);
    }
    let doc = document(name, Some(&live.raw), &[(field, value)]);
    let written = write(client, name, &doc, write_args).await?;
    println!(
        "{}: spec.{field} set to {said}{}",
        tenant_ref(name),
        dry_run_suffix(write_args.dry_run)
    );
    Ok(written
        .and_then(|w| w.tenant.metadata.generation)
        .unwrap_or(generation))
}

async fn wait(
    client: &Client,
    name: &str,
    goal: Goal,
    generation: i64,
    w: &WaitArgs,
) -> Result<(), Failure> {
    if w.wait {
        follow(client, name, goal, generation, w.timeout).await
    } else {
        Ok(())
    }
}

pub async fn set_state(client: &Client, action: Action, args: &StateArgs) -> Result<(), Failure> {
    let live = cluster::tenant(client, &args.name).await?;
    let target = match action
        .decide(&args.name, live.tenant.spec.state)
        .map_err(Failure::new)?
    {
        Decision::Set(s) | Decision::Already(s) => s,
    };
    let generation = set_field(
        client,
        &live,
        "state",
        json!(target),
        &args.write,
        &format!("{target:?}"),
    )
    .await?;
    wait(
        client,
        &args.name,
        Goal::Phase(phase_of(target)),
        generation,
        &args.wait,
    )
    .await
}

/// The Secret must exist and hold the key; a user who may not read Secrets is not stopped
/// (the operator reads it, not the user).
async fn check_secret(
    client: &Client,
    namespace: &str,
    name: &str,
    key: &str,
) -> Result<(), Failure> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    match secrets.get(name).await {
        Ok(secret) => {
            let keys: Vec<&String> = secret
                .data
                .iter()
                .flat_map(|d| d.keys())
                .chain(secret.string_data.iter().flat_map(|d| d.keys()))
                .collect();
            if keys.iter().any(|k| *k == key) {
                Ok(())
            } else {
                let list: Vec<&str> = keys.iter().map(|k| k.as_str()).collect();
                Err(Failure::new(format!(
                    "secret \"{namespace}/{name}\" has no key {key:?} (its keys: {}); --key names the one with the kubeconfig",
                    if list.is_empty() {
                        "none".to_string()
                    } else {
                        list.join(", ")
                    }
                )))
            }
        }
        Err(e) if failure::is_not_found(&e) => Err(Failure::new(format!(
            "secret \"{namespace}/{name}\" not found; create it with the target cluster's \
             kubeconfig: kubectl create secret generic {name} -n {namespace} --from-file={key}=PATH"
        ))),
        Err(kube::Error::Api(s)) if s.code == 403 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

pub async fn migrate(client: &Client, args: &MigrateArgs) -> Result<(), Failure> {
    let live = cluster::tenant(client, &args.name).await?;
    let (namespace, secret) = &args.to;
    check_secret(client, namespace, secret, &args.key).await?;
    let migration = json!({
        "targetRef": {"namespace": namespace, "name": secret, "key": args.key},
        "mode": args.mode,
    });
    let mode = match args.mode {
        MigrationMode::Copy => "Copy",
        MigrationMode::Move => "Move",
    };
    let said = format!(
        "{mode} to the cluster in Secret {namespace}/{secret} key {}",
        args.key
    );
    let generation = set_field(client, &live, "migration", migration, &args.write, &said).await?;
    wait(
        client,
        &args.name,
        Goal::Migrated(args.mode),
        generation,
        &args.wait,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_state_has_its_phase() {
        assert_eq!(phase_of(TenantState::Active), Phase::Active);
        assert_eq!(phase_of(TenantState::Suspended), Phase::Suspended);
        assert_eq!(phase_of(TenantState::Hibernated), Phase::Hibernated);
        assert_eq!(phase_of(TenantState::Archived), Phase::Archived);
    }
}
