//! `kubectl-tenant`, the built binary, against kube-test: every command's exact output and
//! exit code, its errors, `--dry-run`, and `--wait` piped and on a terminal, with the test
//! playing the operator by writing the Tenant's status.

mod support;

use serde_json::json;
use support::{Env, Piped, Terminal, mask_age, poll, start};

async fn plan_pro(env: &Env) {
    env.apply(
        "test",
        json!({"apiVersion": "landlord.dev/v1alpha1", "kind": "TenantQuota",
               "metadata": {"name": "pro"},
               "spec": {"maxNamespaces": 5,
                        "hard": {"requests.cpu": "8", "requests.memory": "16Gi", "pods": 50},
                        "rates": [{"name": "api-calls", "limit": 1000, "per": "1m", "burst": 2000}],
                        "features": ["sso", "audit-log"]}}),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_get_and_plans_read_what_the_operator_reports() {
    let env = start("list", true).await;
    let none = env.run(&["list"]).await;
    assert_eq!(
        (none.code, none.stdout.as_str(), none.stderr.as_str()),
        (0, "", "No tenants found.\n")
    );
    plan_pro(&env).await;
    env.apply(
        "test",
        json!({"apiVersion": "landlord.dev/v1alpha1", "kind": "Tenant",
               "metadata": {"name": "acme"},
               "spec": {"displayName": "ACME Corporation", "quotaRef": "pro",
                        "owners": [{"kind": "Group", "name": "acme-admins"}],
                        "namespaces": [{"name": "prod"}, {"name": "ci"}],
                        "retentionDays": 30}}),
    )
    .await;
    env.tenant("globex").await;
    env.status(
        "acme",
        json!({"phase": "Active", "observedGeneration": 1,
               "conditions": [{"type": "Ready", "status": "True", "reason": "Provisioned",
                               "message": "all 2 namespaces are provisioned", "observedGeneration": 1,
                               "lastTransitionTime": "2026-11-29T19:00:00Z"}],
               "namespaces": ["acme-ci", "acme-prod"], "namespaceCount": 2,
               "cpuUtilization": 25, "memoryUtilization": 3,
               "usage": {"requests.cpu": {"used": "2", "hard": "8", "utilization": 25}},
               "rates": {"api-calls": {"rate": "1.5", "limit": "1000/1m", "allowed": 90, "denied": 0}},
               "cost": {"period": "2026-11", "amount": "4.20", "currency": "USD"}}),
    )
    .await;

    let list = env.run(&["list"]).await;
    assert_eq!((list.code, list.stderr.as_str()), (0, ""));
    assert_eq!(
        mask_age(&list.stdout),
        "NAME     PHASE    PLAN   NAMESPACES   CPU %    MEMORY %   COST       AGE\n\
         acme     Active   pro    2            25%      3%         4.20 USD AGE\n\
         globex   <none>   pro    0            <none>   <none>     <none> AGE\n"
            .replace("4.20 USD AGE", "4.20 USD   AGE")
            .replace("<none> AGE", "<none>     AGE")
    );
    let wide = env.run(&["list", "-o", "wide"]).await;
    let header = wide.stdout.lines().next().unwrap();
    // (the AGE column's width follows the ages, so only the words are compared)
    assert_eq!(
        header
            .split("   ")
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .collect::<Vec<_>>(),
        [
            "NAME",
            "PHASE",
            "PLAN",
            "NAMESPACES",
            "CPU %",
            "MEMORY %",
            "COST",
            "AGE",
            "STATE",
            "READY",
            "DISPLAY NAME"
        ]
    );
    assert!(
        wide.stdout
            .lines()
            .nth(1)
            .unwrap()
            .ends_with("Active   True (Provisioned)   ACME Corporation"),
        "{}",
        wide.stdout
    );
    env.ok(
        &["list", "-o", "name"],
        "tenant.landlord.dev/acme\ntenant.landlord.dev/globex\n",
    )
    .await;
    let json = env.run(&["list", "-o", "json"]).await;
    let list_json: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(list_json["kind"], "List");
    assert_eq!(list_json["items"][0]["metadata"]["name"], "acme");
    assert_eq!(list_json["items"][0]["status"]["cost"]["amount"], "4.20");
    assert!(
        list_json["items"][0]["metadata"]
            .get("managedFields")
            .is_none()
    );
    let yaml = env.run(&["list", "-o", "yaml"]).await;
    let list_yaml: serde_json::Value = serde_saphyr::from_str(&yaml.stdout).unwrap();
    assert_eq!(list_yaml, list_json);
    env.ok(&["list", "-l", "nobody=here", "-o", "name"], "")
        .await;

    let get = env.run(&["get", "acme"]).await;
    assert_eq!((get.code, get.stderr.as_str()), (0, ""));
    let created = env
        .get("acme")
        .await
        .unwrap()
        .metadata
        .creation_timestamp
        .unwrap()
        .0;
    let shown: Vec<String> = get
        .stdout
        .lines()
        .map(|l| {
            if l.starts_with("Created:") {
                assert!(l.starts_with(&format!("Created:       {created} (")), "{l}");
                "Created:       CREATED".to_string()
            } else {
                l.to_string()
            }
        })
        .collect();
    assert_eq!(
        shown.join("\n") + "\n",
        "\
Name:          acme
Display name:  ACME Corporation
Plan:          pro
State:         Active (phase Active)
Generation:    1 (observed 1)
Deletion:      Archive, archives kept 30 days
Owners:        Group/acme-admins
Namespaces:    acme-ci, acme-prod
Created:       CREATED
Conditions:
  TYPE    STATUS   REASON        MESSAGE
  Ready   True     Provisioned   all 2 namespaces are provisioned
Usage:
  RESOURCE       USED   HARD   UTILIZATION
  requests.cpu   2      8      [#####---------------] 25%
Rates:
  DIMENSION   RATE/S   LIMIT     ALLOWED   DENIED
  api-calls   1.5      1000/1m   90        0
Cost:          4.20 USD in 2026-11
"
    );
    env.ok(&["get", "acme", "-o", "name"], "tenant.landlord.dev/acme\n")
        .await;
    let get_json = env.run(&["get", "acme", "-o", "json"]).await;
    let object: serde_json::Value = serde_json::from_str(&get_json.stdout).unwrap();
    assert_eq!(object, list_json["items"][0]);
    let get_yaml = env.run(&["get", "acme", "-o", "yaml"]).await;
    assert_eq!(
        serde_saphyr::from_str::<serde_json::Value>(&get_yaml.stdout).unwrap(),
        object
    );
    env.fails(
        &["get", "acme2"],
        1,
        "tenant \"acme2\" not found; \"kubectl tenant list\" shows the tenants",
    )
    .await;

    let plans = env.run(&["plans"]).await;
    assert_eq!((plans.code, plans.stderr.as_str()), (0, ""));
    assert_eq!(
        mask_age(&plans.stdout),
        "NAME   TENANTS   MAX NS   CPU   MEMORY   PODS   RATES               FEATURES        AGE\n\
         pro    <none>    5        8     16Gi     50     api-calls 1000/1m   sso,audit-log AGE\n"
            .replace("audit-log AGE", "audit-log   AGE")
    );
    env.ok(&["plans", "-o", "name"], "tenantquota.landlord.dev/pro\n")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_and_update_apply_as_kubectl_tenant_and_dry_runs_write_nothing() {
    let env = start("create", true).await;
    let create = [
        "create",
        "acme",
        "--plan",
        "pro",
        "--display-name",
        "ACME Corporation",
        "--owner",
        "Group:acme-admins",
        "--owner",
        "ServiceAccount:acme-ci/deployer",
        "--namespace",
        "prod",
        "--namespace",
        "ci",
    ];
    env.fails(
        &create,
        1,
        "plan \"pro\" not found; \"kubectl tenant plans\" shows the plans",
    )
    .await;
    plan_pro(&env).await;

    let spec = json!({
        "displayName": "ACME Corporation",
        "quotaRef": "pro",
        "owners": [{"kind": "Group", "name": "acme-admins"},
                   {"kind": "ServiceAccount", "name": "deployer", "namespace": "acme-ci"}],
        "namespaces": [{"name": "prod"}, {"name": "ci"}],
    });
    let client_dry = env
        .run(&[&create[..], &["--dry-run=client", "-o", "json"]].concat())
        .await;
    assert_eq!((client_dry.code, client_dry.stderr.as_str()), (0, ""));
    let doc: serde_json::Value = serde_json::from_str(&client_dry.stdout).unwrap();
    assert_eq!(
        doc,
        json!({"apiVersion": "landlord.dev/v1alpha1", "kind": "Tenant",
               "metadata": {"name": "acme"}, "spec": spec})
    );
    env.ok(
        &[&create[..], &["--dry-run=client"]].concat(),
        "tenant.landlord.dev/acme created (dry run)\n",
    )
    .await;
    env.ok(
        &[&create[..], &["--dry-run=server"]].concat(),
        "tenant.landlord.dev/acme created (server dry run)\n",
    )
    .await;
    assert!(
        env.get("acme").await.is_none(),
        "a dry run wrote the tenant"
    );

    env.ok(&create, "tenant.landlord.dev/acme created\n").await;
    let acme = env.get("acme").await.unwrap();
    let written = serde_json::to_value(&acme.spec).unwrap();
    for (field, value) in spec.as_object().unwrap() {
        assert_eq!(&written[field], value, "{field}");
    }
    let managers: Vec<_> = acme
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .map(|m| (m.manager.clone().unwrap(), m.operation.clone().unwrap()))
        .collect();
    assert_eq!(
        managers,
        [("kubectl-tenant".to_string(), "Apply".to_string())]
    );
    env.fails(
        &create,
        1,
        "tenant \"acme\" already exists; \"kubectl tenant update acme\" changes it",
    )
    .await;
    let bad = env.run(&["create", "Not_A_Name", "--plan", "pro"]).await;
    assert_eq!((bad.code, bad.stdout.as_str()), (1, ""));
    assert!(
        bad.stderr
            .starts_with("error: Tenant.landlord.dev \"Not_A_Name\" is invalid: ")
            && bad.stderr.contains(
                "tenant name must be a DNS-1123 label: lower-case letters, digits and '-', \
                 starting and ending with a letter or digit"
            ),
        "{}",
        bad.stderr
    );

    // A change keeps every field the plugin applied before.
    env.ok(
        &["update", "acme", "--display-name", "ACME Corp"],
        "tenant.landlord.dev/acme configured\n",
    )
    .await;
    let after = serde_json::to_value(env.get("acme").await.unwrap().spec).unwrap();
    assert_eq!(after["displayName"], "ACME Corp");
    assert_eq!(after["quotaRef"], "pro");
    assert_eq!(after["owners"], spec["owners"]);
    assert_eq!(after["namespaces"], spec["namespaces"]);
    env.ok(
        &["update", "acme", "--display-name", "ACME Corp"],
        "tenant.landlord.dev/acme unchanged\n",
    )
    .await;
    env.ok(
        &["update", "acme", "--enabled", "false"],
        "tenant.landlord.dev/acme configured\n",
    )
    .await;
    let suspended = env.get("acme").await.unwrap().spec;
    assert_eq!(
        (suspended.state, suspended.display_name.as_deref()),
        (landlord::api::TenantState::Suspended, Some("ACME Corp"))
    );
    let generation = env.generation("acme").await;
    env.ok(
        &["update", "acme", "--enabled", "true", "--dry-run=server"],
        "tenant.landlord.dev/acme configured (server dry run)\n",
    )
    .await;
    env.ok(
        &[
            "update",
            "acme",
            "--plan",
            "pro",
            "--dry-run=client",
            "-o",
            "name",
        ],
        "tenant.landlord.dev/acme\n",
    )
    .await;
    assert_eq!(env.generation("acme").await, generation, "a dry run wrote");
    assert_eq!(
        env.get("acme").await.unwrap().spec.state,
        landlord::api::TenantState::Suspended
    );
    // --enabled is suspend and resume: the same rules.
    env.tenant("sleepy").await;
    env.apply(
        "test",
        json!({"apiVersion": "landlord.dev/v1alpha1", "kind": "Tenant",
               "metadata": {"name": "sleepy"}, "spec": {"quotaRef": "pro", "state": "Hibernated"}}),
    )
    .await;
    env.fails(
        &["update", "sleepy", "--enabled", "true"],
        1,
        "tenant \"sleepy\" is Hibernated, so it cannot resume: \"kubectl tenant wake sleepy\" wakes it first",
    )
    .await;
    env.fails(
        &["update", "acme", "--plan", "gold"],
        1,
        "plan \"gold\" not found; \"kubectl tenant plans\" shows the plans",
    )
    .await;
    env.fails(
        &["update", "nobody", "--display-name", "x"],
        1,
        "tenant \"nobody\" not found; \"kubectl tenant list\" shows the tenants",
    )
    .await;
    let nothing = env.run(&["update", "acme"]).await;
    assert_eq!(nothing.code, 2, "{nothing:?}");
    assert!(nothing.stderr.contains("--plan"), "{}", nothing.stderr);

    // A field another manager set to another value is a conflict, unless taken over.
    env.apply(
        "gitops",
        json!({"apiVersion": "landlord.dev/v1alpha1", "kind": "Tenant",
               "metadata": {"name": "acme"}, "spec": {"displayName": "From Git"}}),
    )
    .await;
    let conflict = env.run(&["update", "acme", "--display-name", "Mine"]).await;
    assert_eq!((conflict.code, conflict.stdout.as_str()), (1, ""));
    assert!(
        conflict.stderr.starts_with("error: ")
            && conflict.stderr.contains("gitops")
            && conflict.stderr.ends_with(
                "; pass --force-conflicts to take these fields over (the other manager may set \
                 them back: change them where it keeps them instead)\n"
            ),
        "{}",
        conflict.stderr
    );
    env.ok(
        &[
            "update",
            "acme",
            "--display-name",
            "Mine",
            "--force-conflicts",
        ],
        "tenant.landlord.dev/acme configured\n",
    )
    .await;
    assert_eq!(
        env.get("acme").await.unwrap().spec.display_name.as_deref(),
        Some("Mine")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn life_commands_set_the_state_their_name_says_or_refuse() {
    let env = start("life", true).await;
    env.tenant("acme").await;
    let state = || async { env.get("acme").await.unwrap().spec.state };
    use landlord::api::TenantState as S;

    env.ok(
        &["suspend", "acme", "--dry-run=client"],
        "tenant.landlord.dev/acme: spec.state set to Suspended (dry run)\n",
    )
    .await;
    env.ok(
        &["suspend", "acme", "--dry-run=server"],
        "tenant.landlord.dev/acme: spec.state set to Suspended (server dry run)\n",
    )
    .await;
    assert_eq!(
        (state().await, env.generation("acme").await),
        (S::Active, 1)
    );

    for (command, said, expected) in [
        ("suspend", "set to Suspended", S::Suspended),
        ("suspend", "is already Suspended", S::Suspended),
        ("resume", "set to Active", S::Active),
        ("hibernate", "set to Hibernated", S::Hibernated),
        ("wake", "set to Active", S::Active),
        ("archive", "set to Archived", S::Archived),
        ("restore", "set to Active", S::Active),
        ("wake", "is already Active", S::Active),
    ] {
        env.ok(
            &[command, "acme"],
            &format!("tenant.landlord.dev/acme: spec.state {said}\n"),
        )
        .await;
        assert_eq!(state().await, expected, "{command}");
    }
    env.ok(
        &["archive", "acme"],
        "tenant.landlord.dev/acme: spec.state set to Archived\n",
    )
    .await;
    env.fails(
        &["hibernate", "acme"],
        1,
        "tenant \"acme\" is Archived, so it cannot hibernate: \"kubectl tenant restore acme\" restores it first",
    )
    .await;
    env.fails(
        &["suspend", "acme"],
        1,
        "tenant \"acme\" is Archived, so it cannot suspend: \"kubectl tenant restore acme\" restores it first",
    )
    .await;
    env.fails(
        &["resume", "nobody"],
        1,
        "tenant \"nobody\" not found; \"kubectl tenant list\" shows the tenants",
    )
    .await;
    let both = env
        .run(&["suspend", "acme", "--wait", "--dry-run=client"])
        .await;
    assert_eq!(both.code, 2, "{both:?}");
    // The state the plugin applied survives a later change of another field.
    env.ok(
        &["update", "acme", "--display-name", "ACME"],
        "tenant.landlord.dev/acme configured\n",
    )
    .await;
    assert_eq!(state().await, S::Archived);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_sets_the_target_after_checking_the_secret() {
    let env = start("migrate", true).await;
    env.tenant("acme").await;
    env.fails(
        &["migrate", "acme", "--to", "ops/target"],
        1,
        "secret \"ops/target\" not found; create it with the target cluster's kubeconfig: \
         kubectl create secret generic target -n ops --from-file=kubeconfig=PATH",
    )
    .await;
    secret(&env).await;
    env.fails(
        &["migrate", "acme", "--to", "ops/target", "--key", "config"],
        1,
        "secret \"ops/target\" has no key \"config\" (its keys: kubeconfig); --key names the one with the kubeconfig",
    )
    .await;
    let bad = env.run(&["migrate", "acme", "--to", "target"]).await;
    assert_eq!(bad.code, 2, "{bad:?}");
    env.ok(
        &["migrate", "acme", "--to", "ops/target", "--dry-run=client"],
        "tenant.landlord.dev/acme: spec.migration set to Copy to the cluster in Secret ops/target key kubeconfig (dry run)\n",
    )
    .await;
    assert!(env.get("acme").await.unwrap().spec.migration.is_none());
    env.ok(
        &["migrate", "acme", "--to", "ops/target", "--mode", "Move"],
        "tenant.landlord.dev/acme: spec.migration set to Move to the cluster in Secret ops/target key kubeconfig\n",
    )
    .await;
    let raw = serde_json::to_value(env.get("acme").await.unwrap().spec).unwrap();
    assert_eq!(
        raw["migration"],
        json!({"targetRef": {"namespace": "ops", "name": "target", "key": "kubeconfig"}, "mode": "Move"})
    );
    env.ok(
        &["migrate", "acme", "--to", "ops/target", "--mode", "Move"],
        "tenant.landlord.dev/acme: spec.migration is already Move to the cluster in Secret ops/target key kubeconfig\n",
    )
    .await;
}

async fn secret(env: &Env) {
    use k8s_openapi::api::core::v1::{Namespace, Secret};
    use kube::api::{Api, PostParams};
    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "ops"}})).unwrap(),
        )
        .await
        .unwrap();
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), "ops");
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "target"},
                                            "stringData": {"kubeconfig": "apiVersion: v1"}}))
            .unwrap(),
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_asks_refuses_when_piped_and_force_says_what_it_changes() {
    let env = start("delete", true).await;
    env.tenant("acme").await;
    env.fails(
        &["delete", "acme"],
        1,
        "not deleting tenant \"acme\" without confirmation: standard input is not a terminal; \
         pass --yes to delete it",
    )
    .await;
    env.ok(
        &["delete", "acme", "--yes", "--force", "--dry-run=server"],
        "tenant.landlord.dev/acme: spec.deletionPolicy set to Delete (--force): its namespaces \
         are deleted, not archived (server dry run)\n\
         tenant.landlord.dev/acme deleted (server dry run)\n",
    )
    .await;
    env.ok(
        &["delete", "acme", "--yes", "--dry-run=client"],
        "tenant.landlord.dev/acme deleted (dry run)\n",
    )
    .await;
    let kept = env.get("acme").await.expect("a dry run deleted the tenant");
    assert_eq!(
        kept.spec.deletion_policy,
        landlord::api::DeletionPolicy::Archive
    );

    // On a terminal it asks; anything but yes keeps the tenant.
    let mut no = Terminal::spawn(&env, &["delete", "acme"]);
    no.shows("Delete tenant \"acme\"? Under deletionPolicy Archive its namespaces are archived, then deleted. [y/N] ")
        .await;
    no.type_text("n\n");
    let (code, screen) = no.finish().await;
    assert_eq!(code, 1, "{screen}");
    assert!(
        screen.ends_with("error: tenant \"acme\" not deleted\n"),
        "{screen:?}"
    );
    assert!(env.get("acme").await.is_some());

    let mut yes = Terminal::spawn(&env, &["delete", "acme", "--force", "--wait"]);
    yes.shows(
        "Under deletionPolicy Delete its namespaces are deleted with everything in them. [y/N] ",
    )
    .await;
    yes.type_text("y\n");
    let (code, screen) = yes.finish().await;
    assert_eq!(code, 0, "{screen}");
    assert!(
        screen.contains(
            "tenant.landlord.dev/acme: spec.deletionPolicy set to Delete (--force): its \
             namespaces are deleted, not archived\ntenant.landlord.dev/acme deleted\n"
        ) && screen.ends_with("tenant.landlord.dev/acme is gone\n"),
        "{screen:?}"
    );
    assert!(env.get("acme").await.is_none());

    env.apply(
        "test",
        json!({"apiVersion": "landlord.dev/v1alpha1", "kind": "Tenant",
               "metadata": {"name": "gone"}, "spec": {"deletionPolicy": "Delete"}}),
    )
    .await;
    env.ok(
        &["delete", "gone", "--force", "--yes"],
        "tenant.landlord.dev/gone: spec.deletionPolicy is already Delete\n\
         tenant.landlord.dev/gone deleted\n",
    )
    .await;
    poll("gone deleted", || async { env.get("gone").await.is_none() }).await;
    env.fails(
        &["delete", "gone", "--yes"],
        1,
        "tenant \"gone\" not found; \"kubectl tenant list\" shows the tenants",
    )
    .await;
}

/// Status the test writes as the operator would, for generation `g`.
fn ready(phase: &str, g: i64, status: &str, reason: &str, message: &str) -> serde_json::Value {
    json!({"phase": phase, "observedGeneration": g,
           "conditions": [{"type": "Ready", "status": status, "reason": reason, "message": message,
                           "observedGeneration": g, "lastTransitionTime": "2026-11-29T20:00:00Z"}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_piped_prints_a_line_per_change_and_ends_on_the_target_or_the_failure() {
    let env = start("wait", true).await;
    env.tenant("acme").await;
    env.status("acme", ready("Active", 1, "True", "Provisioned", "ok"))
        .await;

    // Reached: the status of generation 2 says Suspended.
    let mut run = Piped::spawn(&env, &["suspend", "acme", "--wait"]);
    assert_eq!(
        run.line().await,
        "tenant.landlord.dev/acme: spec.state set to Suspended"
    );
    assert_eq!(
        run.line().await,
        "tenant.landlord.dev/acme: phase Active, waiting for the operator to see generation 2"
    );
    env.status("acme", ready("Active", 2, "False", "Suspending", ""))
        .await;
    assert_eq!(run.line().await, "tenant.landlord.dev/acme: phase Active");
    env.status("acme", ready("Suspended", 2, "True", "Suspended", ""))
        .await;
    let end = run.finish().await;
    assert_eq!((end.code, end.stderr.as_str()), (0, ""));
    assert_eq!(
        end.stdout.lines().last(),
        Some("tenant.landlord.dev/acme is Suspended")
    );

    // Refused: the operator says TransitionRefused for the generation restore wrote.
    env.ok(
        &["archive", "acme"],
        "tenant.landlord.dev/acme: spec.state set to Archived\n",
    )
    .await;
    let mut run = Piped::spawn(&env, &["restore", "acme", "--wait"]);
    assert_eq!(
        run.line().await,
        "tenant.landlord.dev/acme: spec.state set to Active"
    );
    let g = env.generation("acme").await;
    assert_eq!(
        run.line().await,
        format!(
            "tenant.landlord.dev/acme: phase Suspended, waiting for the operator to see generation {g}"
        )
    );
    let why =
        "no archive is recorded for this archived tenant, so there is nothing to restore from";
    env.status(
        "acme",
        ready("Archived", g, "False", "TransitionRefused", why),
    )
    .await;
    let end = run.finish().await;
    assert_eq!(
        (end.code, end.stderr.as_str()),
        (
            1,
            format!("error: tenant \"acme\" failed: TransitionRefused: {why}\n").as_str()
        )
    );

    // Failed: phase Failed with the reason of the condition that failed.
    env.status(
        "acme",
        json!({"phase": "Active", "observedGeneration": g, "conditions": []}),
    )
    .await;
    let mut run = Piped::spawn(&env, &["hibernate", "acme", "--wait", "--timeout", "5m"]);
    assert_eq!(
        run.line().await,
        "tenant.landlord.dev/acme: spec.state set to Hibernated"
    );
    let g = env.generation("acme").await;
    run.line().await;
    env.status(
        "acme",
        json!({"phase": "Failed", "observedGeneration": g,
               "conditions": [{"type": "Provisioned", "status": "False", "reason": "NamespaceConflict",
                               "message": "namespace acme-prod belongs to someone else",
                               "observedGeneration": g, "lastTransitionTime": "2026-11-29T20:00:00Z"}]}),
    )
    .await;
    let end = run.finish().await;
    assert_eq!(
        (end.code, end.stderr.as_str()),
        (
            1,
            "error: tenant \"acme\" failed: phase Failed, Provisioned NamespaceConflict: namespace acme-prod belongs to someone else\n"
        )
    );

    // Timed out: nothing changes, exit 3 with what was seen last. Whether the watch's first
    // event came within the second depends on the machine's load, so both endings are exact.
    let end = env
        .run(&["wake", "acme", "--wait", "--timeout", "1s"])
        .await;
    let set = "tenant.landlord.dev/acme: spec.state set to Active\n";
    let seen = format!(
        "phase Failed, waiting for the operator to see generation {}",
        g + 1
    );
    let timed_out = |last: &str| {
        format!(
            "error: timed out after 1s waiting for tenant \"acme\" to reach phase Active (last \
             seen: {last}); --timeout waits longer\n"
        )
    };
    let endings = [
        (
            3,
            format!("{set}tenant.landlord.dev/acme: {seen}\n"),
            timed_out(&seen),
        ),
        (3, set.to_string(), timed_out("nothing yet")),
    ];
    assert!(
        endings.contains(&(end.code, end.stdout.clone(), end.stderr.clone())),
        "{end:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_wait_follows_the_migration_to_done_failed_or_the_source_gone() {
    let env = start("migrate-wait", true).await;
    secret(&env).await;
    env.tenant("acme").await;

    let mut run = Piped::spawn(&env, &["migrate", "acme", "--to", "ops/target", "--wait"]);
    run.line().await;
    assert_eq!(
        run.line().await,
        "tenant.landlord.dev/acme: phase Pending, waiting for the operator to see generation 2"
    );
    env.status("acme", migration("Migrating", 2, "Copying", 4))
        .await;
    assert_eq!(
        run.line().await,
        "tenant.landlord.dev/acme: phase Migrating, migration Copying 4/10 objects (40%)"
    );
    env.status("acme", migration("Active", 2, "Done", 10)).await;
    let end = run.finish().await;
    assert_eq!((end.code, end.stderr.as_str()), (0, ""));
    assert_eq!(
        end.stdout.lines().last(),
        Some("tenant.landlord.dev/acme migrated")
    );

    // Failed, with the last error the controller recorded.
    let mut run = Piped::spawn(
        &env,
        &[
            "migrate",
            "acme",
            "--to",
            "ops/target",
            "--mode",
            "Move",
            "--wait",
        ],
    );
    run.line().await;
    run.line().await;
    let mut failed = migration("Migrating", 3, "Failed", 4);
    failed["migration"]["lastError"] = json!("the target refused batch 2: check its RBAC");
    failed["conditions"] = json!([{"type": "Migrated", "status": "False", "reason": "CopyFailed",
        "message": "copying failed", "observedGeneration": 3, "lastTransitionTime": "2026-11-29T20:00:00Z"}]);
    env.status("acme", failed).await;
    let end = run.finish().await;
    // A schema without `lastError` prunes it; then the Migrated condition says why.
    let why = if schema_has_last_error() {
        "the target refused batch 2: check its RBAC"
    } else {
        "CopyFailed: copying failed"
    };
    assert_eq!(
        (end.code, end.stderr.as_str()),
        (
            1,
            format!("error: tenant \"acme\" failed: migration Failed: {why}\n").as_str()
        )
    );
    // `get` shows the migration's target, progress and last error.
    let get = env.run(&["get", "acme"]).await;
    let section: Vec<&str> = get
        .stdout
        .lines()
        .skip_while(|l| *l != "Migration:")
        .collect();
    let mut expected = vec![
        "Migration:",
        "  Target:        Secret ops/target key kubeconfig (Move)",
        "  Progress:      Failed [########------------] 40% (4/10 objects)",
        "  Started at:    2026-11-29T20:00:00Z",
    ];
    if schema_has_last_error() {
        expected.push("  Last error:    the target refused batch 2: check its RBAC");
    }
    assert_eq!(section, expected, "{}", get.stdout);

    // Move: the source Tenant going away is the end of a move.
    env.status("acme", migration("Migrating", 3, "Cutover", 10))
        .await;
    let mut run = Piped::spawn(
        &env,
        &[
            "migrate",
            "acme",
            "--to",
            "ops/target",
            "--mode",
            "Move",
            "--wait",
        ],
    );
    assert_eq!(
        run.line().await,
        "tenant.landlord.dev/acme: spec.migration is already Move to the cluster in Secret ops/target key kubeconfig"
    );
    assert_eq!(
        run.line().await,
        "tenant.landlord.dev/acme: phase Migrating, migration Cutover 10/10 objects (100%)"
    );
    env.tenants()
        .delete("acme", &Default::default())
        .await
        .unwrap();
    let end = run.finish().await;
    assert_eq!((end.code, end.stderr.as_str()), (0, ""));
    assert_eq!(
        end.stdout.lines().last(),
        Some("tenant.landlord.dev/acme migrated")
    );
}

fn migration(phase: &str, g: i64, step: &str, done: u64) -> serde_json::Value {
    json!({"phase": phase, "observedGeneration": g,
           "migration": {"phase": step, "totalItems": 10, "completedItems": done,
                         "percentage": done * 10, "startedAt": "2026-11-29T20:00:00Z"}})
}

fn schema_has_last_error() -> bool {
    let crd = landlord::api::crds()
        .into_iter()
        .find(|c| c.spec.names.kind == "Tenant")
        .unwrap();
    let schema = serde_json::to_value(&crd.spec.versions[0].schema).unwrap();
    schema
        .pointer("/openAPIV3Schema/properties/status/properties/migration/properties/lastError")
        .is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_on_a_terminal_shows_a_progress_bar() {
    let env = start("tty", true).await;
    secret(&env).await;
    env.tenant("acme").await;
    let term = Terminal::spawn(&env, &["migrate", "acme", "--to", "ops/target", "--wait"]);
    term.shows("waiting for the operator to see generation 2")
        .await;
    env.status("acme", migration("Migrating", 2, "Copying", 4))
        .await;
    // The bar: 30 cells, 4 of 10 done, then the line the piped output would show.
    term.shows(
        "[############>-----------------] phase Migrating, migration Copying 4/10 objects (40%)",
    )
    .await;
    env.status("acme", migration("Active", 2, "Done", 10)).await;
    let (code, screen) = term.finish().await;
    assert_eq!(code, 0, "{screen}");
    assert!(
        screen.starts_with(
            "tenant.landlord.dev/acme: spec.migration set to Copy to the cluster in Secret ops/target key kubeconfig\n"
        ),
        "{screen:?}"
    );
    assert!(
        screen.ends_with("tenant.landlord.dev/acme migrated\n"),
        "{screen:?}"
    );

    // A state change shows a spinner with the phase.
    env.tenant("globex").await;
    env.status("globex", ready("Active", 1, "True", "Provisioned", ""))
        .await;
    let term = Terminal::spawn(&env, &["suspend", "globex", "--wait"]);
    term.shows(
        "tenant.landlord.dev/globex: phase Active, waiting for the operator to see generation 2",
    )
    .await;
    env.status("globex", ready("Suspended", 2, "True", "Suspended", ""))
        .await;
    let (code, screen) = term.finish().await;
    assert_eq!(code, 0, "{screen}");
    assert!(
        screen.ends_with("tenant.landlord.dev/globex is Suspended\n"),
        "{screen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_and_stats_read_the_ledger() {
    let env = start("usage", true).await;
    env.tenant("acme").await;
    let status = json!({
        "dimensions": {"api-calls": {"allowed": 150, "denied": 3, "daily": {"01": 100, "02": 50}}},
        "resources": {"requests.cpu": "12.5"},
        "cost": {"period": "2026-03", "amount": "1.23", "currency": "USD"},
        "lastFlush": "2026-03-02T10:00:00.123456Z",
    });
    ledger(&env, "acme", "2026-03", status).await;

    env.ok(
        &["usage", "acme", "--period", "2026-03"],
        "Tenant:   acme\nPeriod:   2026-03\nWritten:  2026-03-02T10:00:00.123456Z\nCost:     1.23 USD\n\
         \n\
         DIMENSION   ALLOWED   DENIED   DAYS\n\
         api-calls   150       3        2\n\
         \n\
         RESOURCE       UNIT-HOURS\n\
         requests.cpu   12.5\n",
    )
    .await;
    env.ok(
        &["usage", "acme", "--period", "2026-03", "-o", "csv"],
        "tenant,period,measure,name,day,value\n\
         acme,2026-03,allowed,api-calls,01,100\n\
         acme,2026-03,allowed,api-calls,02,50\n\
         acme,2026-03,allowed,api-calls,total,150\n\
         acme,2026-03,denied,api-calls,total,3\n\
         acme,2026-03,unit-hours,requests.cpu,total,12.5\n\
         acme,2026-03,cost,USD,total,1.23\n",
    )
    .await;
    let json_run = env
        .run(&["usage", "acme", "--period", "2026-03", "-o", "json"])
        .await;
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&json_run.stdout).unwrap(),
        json!({"tenant": "acme", "period": "2026-03",
               "dimensions": {"api-calls": {"allowed": 150, "denied": 3, "daily": {"01": 100, "02": 50}}},
               "resources": {"requests.cpu": "12.5"},
               "cost": {"period": "2026-03", "amount": "1.23", "currency": "USD"},
               "lastFlush": "2026-03-02T10:00:00.123456Z"})
    );
    env.fails(
        &["usage", "acme", "--period", "2026-04"],
        1,
        "no usage recorded for tenant \"acme\" in 2026-04; the operator writes it as the tenant's \
         services use the quota engine (\"kubectl get tenantusages\" lists the months recorded)",
    )
    .await;
    env.fails(
        &["usage", "nobody", "--period", "2026-04"],
        1,
        "tenant \"nobody\" not found; \"kubectl tenant list\" shows the tenants",
    )
    .await;
    let bad = env.run(&["usage", "acme", "--period", "2026-4"]).await;
    assert_eq!(bad.code, 2, "{bad:?}");

    // stats: the rates in status beside this month's ledger.
    let now = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC);
    let (month, today) = (
        format!("{:04}-{:02}", now.year(), now.month()),
        format!("{:02}", now.day()),
    );
    env.status(
        "acme",
        json!({"phase": "Active", "rates": {"api-calls": {"rate": "2.5", "limit": "1000/1m", "allowed": 95, "denied": 5}}}),
    )
    .await;
    ledger(
        &env,
        "acme",
        &month,
        json!({"dimensions": {"api-calls": {"allowed": 300, "denied": 5, "daily": {today.clone(): 40}}},
               "cost": {"period": month, "amount": "0.30", "currency": "USD"}}),
    )
    .await;
    env.ok(
        &["stats", "acme"],
        &format!(
            "Tenant:   acme (phase Active)\nPeriod:   {month}\nCost:     0.30 USD\n\
             \n\
             DIMENSION   RATE/S   LIMIT     ALLOWED   DENIED   DENIED %   TODAY   MONTH\n\
             api-calls   2.5      1000/1m   95        5        5.0%       40      300\n"
        ),
    )
    .await;
    env.fails(
        &["stats", "nobody"],
        1,
        "tenant \"nobody\" not found; \"kubectl tenant list\" shows the tenants",
    )
    .await;
}

async fn ledger(env: &Env, tenant: &str, period: &str, status: serde_json::Value) {
    let name = format!("{tenant}-{period}");
    env.apply(
        "test",
        json!({"apiVersion": "landlord.dev/v1alpha1", "kind": "TenantUsage",
               "metadata": {"name": name}, "spec": {"tenant": tenant, "period": period}}),
    )
    .await;
    let api: kube::Api<landlord::api::TenantUsage> = kube::Api::all(env.client.clone());
    api.patch_status(
        &name,
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(json!({ "status": status })),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_errors_say_what_to_check() {
    let env = start("errors", false).await;
    env.fails(
        &["list"],
        1,
        "the server does not serve Landlord's API (the server could not find the requested \
         resource): install Landlord's CRDs \
         first (\"kubectl get crd tenants.landlord.dev\" checks; see Landlord's README, Install)",
    )
    .await;
    let missing = env
        .run(&["--kubeconfig", "/nonexistent/kubeconfig", "list"])
        .await;
    assert_eq!((missing.code, missing.stdout.as_str()), (1, ""));
    assert!(
        missing
            .stderr
            .starts_with("error: cannot read kubeconfig /nonexistent/kubeconfig: "),
        "{}",
        missing.stderr
    );
    let context = env.run(&["--context", "nowhere", "list"]).await;
    assert_eq!((context.code, context.stdout.as_str()), (1, ""));
    assert!(
        context
            .stderr
            .starts_with("error: cannot use the kubeconfig: ")
            && context.stderr.contains("nowhere")
            && context
                .stderr
                .ends_with("; check --kubeconfig and --context\n"),
        "{}",
        context.stderr
    );
    // A server that is gone.
    let url = env.server.url();
    let closed = std::fs::read_to_string(&env.kubeconfig)
        .unwrap()
        .replace(&url, "http://127.0.0.1:1");
    let dead = env.kubeconfig.with_file_name("dead");
    std::fs::write(&dead, closed).unwrap();
    let gone = env
        .run(&["--kubeconfig", dead.to_str().unwrap(), "list"])
        .await;
    assert_eq!((gone.code, gone.stdout.as_str()), (1, ""));
    assert!(
        gone.stderr
            .starts_with("error: cannot reach the API server (")
            && gone
                .stderr
                .ends_with("): check --kubeconfig and --context, and that the cluster is up\n"),
        "{}",
        gone.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completion_help_and_version_need_no_cluster() {
    let env = start("completion", false).await;
    for shell in ["bash", "zsh", "fish"] {
        let run = env.run(&["completion", shell]).await;
        assert_eq!((run.code, run.stderr.as_str()), (0, ""), "{shell}");
        for word in ["kubectl-tenant", "hibernate", "migrate", "dry-run"] {
            assert!(run.stdout.contains(word), "{shell} completion lacks {word}");
        }
    }
    let version = env.run(&["--version"]).await;
    assert_eq!(
        (version.code, version.stdout.as_str()),
        (
            0,
            format!("kubectl-tenant {}\n", env!("CARGO_PKG_VERSION")).as_str()
        )
    );
    let help = env.run(&["--help"]).await;
    assert_eq!(help.code, 0);
    assert!(help.stdout.starts_with("Landlord tenants from kubectl"));
    assert!(
        help.stdout
            .contains("Usage: kubectl tenant [OPTIONS] <COMMAND>")
    );
    assert!(help.stdout.contains("3 --wait timed out"));
    let unknown = env.run(&["frobnicate"]).await;
    assert_eq!((unknown.code, unknown.stdout.as_str()), (2, ""));
}

/// `kubectl tenant <TAB>` through kubectl itself: kubectl finds `kubectl_complete-tenant` on
/// PATH beside the plugin and shows what it answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_completes_commands_flags_tenants_and_plans() {
    let env = start("kubectl-complete", true).await;
    env.tenant("acme").await;
    env.tenant("globex").await;
    env.apply(
        "test",
        json!({"apiVersion": "landlord.dev/v1alpha1", "kind": "TenantQuota",
               "metadata": {"name": "pro"}, "spec": {}}),
    )
    .await;
    let path = format!(
        "{}:{}:{}",
        std::path::Path::new(support::BIN)
            .parent()
            .unwrap()
            .display(),
        env!("CARGO_MANIFEST_DIR"),
        std::env::var("PATH").unwrap()
    );
    let complete = |words: &[&str]| {
        let out = std::process::Command::new("kubectl")
            .args(["__complete", "tenant"])
            .args(words)
            .env("PATH", &path)
            .env("KUBECONFIG", &env.kubeconfig)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(
        complete(&["su"]),
        "suspend\tSuspend a tenant: nothing new starts, owners may only view (spec.state: Suspended)\n:4\n"
    );
    assert_eq!(complete(&["suspend", ""]), "acme\nglobex\n:4\n");
    assert_eq!(complete(&["get", "g"]), "globex\n:4\n");
    assert_eq!(complete(&["update", "acme", "--plan", ""]), "pro\n:4\n");
    assert_eq!(
        complete(&["get", "acme", "-o", ""]),
        "yaml\njson\nname\n:4\n"
    );
    // An unreachable cluster: no names, at once.
    let out = std::process::Command::new("kubectl")
        .args([
            "__complete",
            "tenant",
            "--kubeconfig",
            "/nonexistent",
            "get",
            "",
        ])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), ":4\n");
}
