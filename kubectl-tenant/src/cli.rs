//! The command line, as clap derives it. Kept apart from what the commands do, so that
//! `completion` can generate scripts from it and tests can parse it without a cluster.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use clap_complete::Shell;
use landlord::api::{MigrationMode, OwnerKind};

#[derive(Parser, Debug)]
#[command(
    name = "kubectl-tenant",
    bin_name = "kubectl tenant",
    version,
    about = "Landlord tenants from kubectl: list, inspect, create, change and follow them",
    long_about = None,
    arg_required_else_help = true,
    after_help = "Exit codes: 0 done, 1 error (including a failure the tenant reports while \
                  --wait follows it, and a delete that was not confirmed), 2 bad command line, \
                  3 --wait timed out."
)]
pub struct Cli {
    /// Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster)
    #[arg(long, global = true, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: the current context)
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// List tenants, like "kubectl get tenants"
    List {
        #[arg(short, long, value_enum)]
        output: Option<ListOutput>,
        /// Only tenants matching this label selector
        #[arg(short = 'l', long)]
        selector: Option<String>,
    },
    /// Show one tenant: conditions, namespaces, usage, rates, cost, archive, migration
    Get {
        name: String,
        #[arg(short, long, value_enum)]
        output: Option<ObjectOutput>,
    },
    /// List the plans (TenantQuotas)
    Plans {
        #[arg(short, long, value_enum)]
        output: Option<ObjectOutput>,
    },
    /// Create a tenant (server-side apply, field manager kubectl-tenant)
    Create(CreateArgs),
    /// Change a tenant's plan, display name or whether it is enabled
    Update(UpdateArgs),
    /// Delete a tenant (asks first unless --yes)
    Delete(DeleteArgs),
    /// Suspend a tenant: nothing new starts, owners may only view (spec.state: Suspended)
    Suspend(StateArgs),
    /// Resume a suspended tenant (spec.state: Active)
    Resume(StateArgs),
    /// Hibernate a tenant: workloads scaled to zero, values remembered (spec.state: Hibernated)
    Hibernate(StateArgs),
    /// Wake a hibernated tenant (spec.state: Active)
    Wake(StateArgs),
    /// Archive a tenant's objects, then remove its namespaces (spec.state: Archived)
    Archive(StateArgs),
    /// Restore an archived tenant (spec.state: Active)
    Restore(StateArgs),
    /// Copy or move a tenant to another cluster (spec.migration)
    Migrate(MigrateArgs),
    /// A tenant's metered usage of a month, from its TenantUsage ledger
    Usage {
        name: String,
        /// The month, YYYY-MM (default: this month, UTC)
        #[arg(long, value_parser = period)]
        period: Option<String>,
        #[arg(short, long, value_enum, default_value_t = UsageOutput::Table)]
        output: UsageOutput,
    },
    /// A tenant's engine rates now, and this month's totals from the ledger
    Stats { name: String },
    /// Print a shell completion script
    Completion { shell: Shell },
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListOutput {
    Wide,
    Yaml,
    Json,
    Name,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectOutput {
    Yaml,
    Json,
    Name,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsageOutput {
    Table,
    Json,
    Csv,
}

/// `--dry-run`, as kubectl spells it.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DryRun {
    /// Send the request
    #[default]
    None,
    /// Print what would be sent; send nothing
    Client,
    /// Let the API server validate and admit it, without storing it
    Server,
}

/// What every command that writes shares.
#[derive(Args, Debug, Clone)]
pub struct WriteArgs {
    /// Only show what would change: client (nothing sent) or server (validated, not stored)
    #[arg(long, value_enum, default_value_t = DryRun::None, value_name = "MODE")]
    pub dry_run: DryRun,
    /// Take over fields another manager (kubectl apply, Argo CD) set to other values
    #[arg(long)]
    pub force_conflicts: bool,
}

/// `--wait` and `--timeout`.
#[derive(Args, Debug, Clone)]
pub struct WaitArgs {
    /// Follow the tenant until the change is done (a progress bar on a terminal)
    #[arg(long, conflicts_with = "dry_run")]
    pub wait: bool,
    /// How long --wait waits, e.g. 90s, 10m, 1h
    #[arg(long, default_value = "10m", value_parser = landlord::duration::flag, requires = "wait")]
    pub timeout: Duration,
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    pub name: String,
    /// The plan (TenantQuota) the tenant is on
    #[arg(long)]
    pub plan: String,
    /// Human name, e.g. "ACME Corporation"
    #[arg(long)]
    pub display_name: Option<String>,
    /// An owner bound to admin in every namespace: User:NAME, Group:NAME or
    /// ServiceAccount:NAMESPACE/NAME (repeatable)
    #[arg(long = "owner", value_name = "KIND:NAME", value_parser = owner)]
    pub owners: Vec<OwnerArg>,
    /// A namespace NAME, created as <tenant>-NAME (repeatable)
    #[arg(long = "namespace", value_name = "NAME")]
    pub namespaces: Vec<String>,
    #[arg(short, long, value_enum)]
    pub output: Option<ObjectOutput>,
    #[command(flatten)]
    pub write: WriteArgs,
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("change").required(true).multiple(true)
    .args(["plan", "display_name", "enabled"])))]
pub struct UpdateArgs {
    pub name: String,
    /// Move the tenant to this plan
    #[arg(long)]
    pub plan: Option<String>,
    #[arg(long)]
    pub display_name: Option<String>,
    /// false suspends the tenant (spec.state: Suspended), true resumes it
    #[arg(long, value_name = "BOOL")]
    pub enabled: Option<bool>,
    #[arg(short, long, value_enum)]
    pub output: Option<ObjectOutput>,
    #[command(flatten)]
    pub write: WriteArgs,
}

#[derive(Args, Debug)]
pub struct DeleteArgs {
    pub name: String,
    /// Set spec.deletionPolicy to Delete first: the namespaces go, nothing is archived
    #[arg(long)]
    pub force: bool,
    /// Do not ask for confirmation
    #[arg(short, long)]
    pub yes: bool,
    #[command(flatten)]
    pub write: WriteArgs,
    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(Args, Debug)]
pub struct StateArgs {
    pub name: String,
    #[command(flatten)]
    pub write: WriteArgs,
    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(Args, Debug)]
pub struct MigrateArgs {
    pub name: String,
    /// The Secret with the target cluster's kubeconfig, NAMESPACE/NAME
    #[arg(long, value_name = "NAMESPACE/SECRET", value_parser = secret_ref)]
    pub to: (String, String),
    /// The Secret's key holding the kubeconfig
    #[arg(long, default_value = "kubeconfig")]
    pub key: String,
    /// Copy keeps the tenant here; Move archives it here once the copy is verified
    #[arg(long, default_value = "Copy", value_parser = mode())]
    pub mode: MigrationMode,
    #[command(flatten)]
    pub write: WriteArgs,
    #[command(flatten)]
    pub wait: WaitArgs,
}

/// An owner from `--owner`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnerArg {
    pub kind: OwnerKind,
    pub name: String,
    pub namespace: Option<String>,
}

fn owner(text: &str) -> Result<OwnerArg, String> {
    let expected = "expected User:NAME, Group:NAME or ServiceAccount:NAMESPACE/NAME";
    let (kind, rest) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?}: {expected}"))?;
    let kind = match kind {
        "User" => OwnerKind::User,
        "Group" => OwnerKind::Group,
        "ServiceAccount" => OwnerKind::ServiceAccount,
        _ => return Err(format!("{text:?}: unknown kind {kind:?}; {expected}")),
    };
    let (namespace, name) = match (kind, rest.split_once('/')) {
        (OwnerKind::ServiceAccount, Some((ns, name))) if !ns.is_empty() => {
            (Some(ns.to_string()), name)
        }
        (OwnerKind::ServiceAccount, _) => {
            return Err(format!(
                "{text:?}: a ServiceAccount owner needs its namespace, ServiceAccount:NAMESPACE/NAME"
            ));
        }
        (_, _) => (None, rest),
    };
    if name.is_empty() {
        return Err(format!("{text:?}: the name is empty; {expected}"));
    }
    Ok(OwnerArg {
        kind,
        name: name.to_string(),
        namespace,
    })
}

fn secret_ref(text: &str) -> Result<(String, String), String> {
    match text.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok((ns.to_string(), name.to_string()))
        }
        _ => Err(format!(
            "{text:?}: expected NAMESPACE/SECRET, the Secret holding the target cluster's kubeconfig"
        )),
    }
}

fn mode() -> impl clap::builder::TypedValueParser<Value = MigrationMode> {
    use clap::builder::{PossibleValuesParser, TypedValueParser};
    PossibleValuesParser::new(["Copy", "Move"]).map(|m| match m.as_str() {
        "Move" => MigrationMode::Move,
        _ => MigrationMode::Copy,
    })
}

/// `YYYY-MM`, as TenantUsage names its months.
fn period(text: &str) -> Result<String, String> {
    let ok = text.len() == 7
        && text.as_bytes()[4] == b'-'
        && text[..4].bytes().all(|b| b.is_ascii_digit())
        && matches!(text[5..].parse::<u8>(), Ok(1..=12));
    if ok {
        Ok(text.to_string())
    } else {
        Err(format!(
            "{text:?}: expected a month written YYYY-MM, e.g. 2026-03"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn owners_name_their_kind_and_service_accounts_their_namespace() {
        assert_eq!(
            owner("Group:acme-admins"),
            Ok(OwnerArg {
                kind: OwnerKind::Group,
                name: "acme-admins".into(),
                namespace: None
            })
        );
        assert_eq!(
            owner("ServiceAccount:acme-ci/deployer"),
            Ok(OwnerArg {
                kind: OwnerKind::ServiceAccount,
                name: "deployer".into(),
                namespace: Some("acme-ci".into())
            })
        );
        assert_eq!(
            owner("ServiceAccount:deployer"),
            Err(
                "\"ServiceAccount:deployer\": a ServiceAccount owner needs its namespace, \
                 ServiceAccount:NAMESPACE/NAME"
                    .into()
            )
        );
        assert_eq!(
            owner("Robot:r2"),
            Err(
                "\"Robot:r2\": unknown kind \"Robot\"; expected User:NAME, Group:NAME or \
                 ServiceAccount:NAMESPACE/NAME"
                    .into()
            )
        );
    }

    #[test]
    fn periods_are_months() {
        assert_eq!(period("2026-03"), Ok("2026-03".into()));
        for bad in ["2026-3", "2026-13", "2026-00", "26-03-01", "abcd-01"] {
            assert!(period(bad).is_err(), "{bad}");
        }
        assert_eq!(
            secret_ref("ops/target"),
            Ok(("ops".into(), "target".into()))
        );
        assert!(secret_ref("target").is_err());
    }
}
