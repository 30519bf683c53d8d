//! `kubectl tenant delete NAME`: asks first (unless `--yes`), since by default deleting a
//! tenant archives and removes its namespaces; `--force` makes it delete them outright.

use std::io::{BufRead, IsTerminal, Write};

use kube::Client;
use kube::api::DeleteParams;
use landlord::api::DeletionPolicy;
use serde_json::json;

use crate::cli::{DeleteArgs, DryRun};
use crate::cluster;
use crate::document::document;
use crate::edit::{dry_run_suffix, write};
use crate::failure::{self, Failure};
use crate::follow::follow;
use crate::format::tenant_ref;
use crate::progress::Goal;

/// What deleting does to the namespaces, for the question asked before.
pub fn consequence(policy: DeletionPolicy, namespaces: &[String]) -> String {
    let which = if namespaces.is_empty() {
        "its namespaces".to_string()
    } else {
        format!("its namespaces ({})", namespaces.join(", "))
    };
    match policy {
        DeletionPolicy::Delete => format!("{which} are deleted with everything in them"),
        DeletionPolicy::Archive => format!("{which} are archived, then deleted"),
        DeletionPolicy::Retain => {
            format!("{which} are kept, without Landlord's quotas, policies and bindings")
        }
    }
}

/// Whether an answer to `[y/N]` is a yes.
pub fn confirmed(answer: &str) -> bool {
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

pub async fn run(client: &Client, args: &DeleteArgs) -> Result<(), Failure> {
    let name = &args.name;
    let live = cluster::tenant(client, name).await?;
    let policy = if args.force {
        DeletionPolicy::Delete
    } else {
        live.tenant.spec.deletion_policy
    };
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            return Err(Failure::new(format!(
                "not deleting tenant {name:?} without confirmation: standard input is not a \
                 terminal; pass --yes to delete it"
            )));
        }
        let namespaces = &live.tenant.status.clone().unwrap_or_default().namespaces;
        eprint!(
            "Delete tenant {name:?}? Under deletionPolicy {policy:?} {}. [y/N] ",
            consequence(policy, namespaces)
        );
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut answer)
            .map_err(|e| Failure::new(format!("reading the answer: {e}")))?;
        if !confirmed(&answer) {
            return Err(Failure::new(format!("tenant {name:?} not deleted")));
        }
    }
    let suffix = dry_run_suffix(args.write.dry_run);
    if args.force {
        if live.tenant.spec.deletion_policy == DeletionPolicy::Delete {
            println!(
                "{}: spec.deletionPolicy is already Delete",
                tenant_ref(name)
            );
        } else {
            let doc = document(
                name,
                Some(&live.raw),
                &[("deletionPolicy", json!("Delete"))],
            );
            // --force is the user's word: take the field over from whoever set it.
            let mut forced = args.write.clone();
            forced.force_conflicts = true;
            write(client, name, &doc, &forced).await?;
            println!(
                "{}: spec.deletionPolicy set to Delete (--force): its namespaces are deleted, \
                 not archived{suffix}",
                tenant_ref(name)
            );
        }
    }
    if args.write.dry_run != DryRun::Client {
        let params = DeleteParams {
            dry_run: args.write.dry_run == DryRun::Server,
            ..DeleteParams::default()
        };
        match cluster::tenants(client).delete(name, &params).await {
            Ok(_) => {}
            Err(e) if failure::is_not_found(&e) => return Err(failure::tenant_not_found(name)),
            Err(e) => return Err(e.into()),
        }
    }
    println!("{} deleted{suffix}", tenant_ref(name));
    if args.wait.wait {
        follow(client, name, Goal::Gone, 0, args.wait.timeout).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_question_says_what_happens_to_the_namespaces() {
        let ns = vec!["acme-prod".to_string(), "acme-ci".to_string()];
        assert_eq!(
            consequence(DeletionPolicy::Archive, &ns),
            "its namespaces (acme-prod, acme-ci) are archived, then deleted"
        );
        assert_eq!(
            consequence(DeletionPolicy::Delete, &[]),
            "its namespaces are deleted with everything in them"
        );
        assert_eq!(
            consequence(DeletionPolicy::Retain, &ns[..1]),
            "its namespaces (acme-prod) are kept, without Landlord's quotas, policies and bindings"
        );
        assert!(confirmed("y\n") && confirmed(" YES ") && !confirmed("") && !confirmed("no"));
    }
}
