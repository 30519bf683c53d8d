//! `kubectl tenant <TAB>`. kubectl (1.26 and later) completes a plugin by running
//! `kubectl_complete-<plugin>` from PATH with the words after the plugin's name, the last
//! one being the word to complete, and reads Cobra's `__complete` answer: one candidate per
//! line (`value<TAB>description`), then `:<directive>`. The `kubectl_complete-tenant` script
//! beside this crate runs `kubectl-tenant __complete "$@"`.
//!
//! What the word can be is decided from clap's command tree ([`want`], pure); tenant and
//! plan names come from the cluster, asked with a short timeout ([`run`]).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Arg, Command};
use kube::api::{Api, ListParams};
use landlord::api::{Tenant, TenantQuota};

/// Cobra's `ShellCompDirectiveNoFileComp`: offer no file names when nothing matches.
const NO_FILES: u32 = 4;

/// How long a completion may wait for the API server: a slow cluster must not hang a shell.
const ASK_FOR: Duration = Duration::from_secs(3);

/// What the word being completed may be.
#[derive(Debug, PartialEq, Eq)]
pub enum Want {
    /// One of these words (subcommands, flags, a flag's values), with their help.
    Words(Vec<(String, String)>),
    /// A tenant's name.
    Tenant,
    /// A plan's (TenantQuota's) name.
    Plan,
    /// Something free-form.
    Nothing,
}

/// The completion of the last of `words` (the ones after `kubectl tenant`), and the
/// `--kubeconfig` and `--context` the earlier ones give.
pub fn want(root: &Command, words: &[String]) -> (Want, Connection) {
    let (done, current) = match words.split_last() {
        Some((last, done)) => (done, last.as_str()),
        None => (&[][..], ""),
    };
    let mut cmd = root;
    let mut positionals = 0;
    let mut connection = Connection::default();
    let mut expecting: Option<&Arg> = None;
    for word in done {
        if let Some(arg) = expecting.take() {
            connection.note(arg, word);
            continue;
        }
        if let Some(flag) = word.strip_prefix("--") {
            let (name, value) = match flag.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (flag, None),
            };
            if let Some(arg) = find(root, cmd, |a| a.get_long() == Some(name)) {
                match value {
                    Some(value) => connection.note(arg, value),
                    None if takes_value(arg) => expecting = Some(arg),
                    None => {}
                }
            }
        } else if let Some(short) = word.strip_prefix('-').filter(|s| s.len() == 1) {
            let c = short.chars().next();
            if let Some(arg) = find(root, cmd, |a| a.get_short() == c)
                && takes_value(arg)
            {
                expecting = Some(arg);
            }
        } else if let Some(sub) = cmd.find_subcommand(word).filter(|_| positionals == 0) {
            cmd = sub;
        } else {
            positionals += 1;
        }
    }
    let want = if let Some(arg) = expecting {
        values_of(arg)
    } else if current.starts_with('-') {
        let flags = cmd
            .get_arguments()
            .chain(root.get_arguments().filter(|a| a.is_global_set()))
            .filter(|a| !a.is_hide_set())
            .filter_map(|a| Some((format!("--{}", a.get_long()?), help(a))))
            .collect();
        Want::Words(flags)
    } else if cmd.has_subcommands() {
        let subcommands = cmd
            .get_subcommands()
            .filter(|s| !s.is_hide_set())
            .map(|s| {
                let about = s.get_about().map(|a| a.to_string()).unwrap_or_default();
                (s.get_name().to_string(), about)
            })
            .collect();
        Want::Words(subcommands)
    } else if positionals == 0 && cmd.get_positionals().any(|a| a.get_id() == "name") {
        Want::Tenant
    } else if positionals == 0 && cmd.get_name() == "completion" {
        values_of(
            cmd.get_positionals()
                .next()
                .expect("completion takes a shell"),
        )
    } else {
        Want::Nothing
    };
    (want.starting_with(current), connection)
}

/// The `--kubeconfig` and `--context` given before the word being completed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Connection {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
}

impl Connection {
    fn note(&mut self, arg: &Arg, value: &str) {
        match arg.get_id().as_str() {
            "kubeconfig" => self.kubeconfig = Some(PathBuf::from(value)),
            "context" => self.context = Some(value.to_string()),
            _ => {}
        }
    }
}

impl Want {
    fn starting_with(self, prefix: &str) -> Self {
        match self {
            Want::Words(words) => Want::Words(
                words
                    .into_iter()
                    .filter(|(w, _)| w.starts_with(prefix))
                    .collect(),
            ),
            other => other,
        }
    }
}

/// An argument of `cmd`, or a global one of `root`, that `matches`.
fn find<'c>(
    root: &'c Command,
    cmd: &'c Command,
    matches: impl Fn(&Arg) -> bool,
) -> Option<&'c Arg> {
    cmd.get_arguments().find(|a| matches(a)).or_else(|| {
        root.get_arguments()
            .find(|a| a.is_global_set() && matches(a))
    })
}

fn takes_value(arg: &Arg) -> bool {
    arg.get_action().takes_values()
}

/// The values a flag takes: its enum's, a plan's name for `--plan`, else anything.
fn values_of(arg: &Arg) -> Want {
    if arg.get_id() == "plan" {
        return Want::Plan;
    }
    let values: Vec<(String, String)> = arg
        .get_possible_values()
        .iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| {
            let help = v.get_help().map(|h| h.to_string()).unwrap_or_default();
            (v.get_name().to_string(), help)
        })
        .collect();
    if values.is_empty() {
        Want::Nothing
    } else {
        Want::Words(values)
    }
}

fn help(arg: &Arg) -> String {
    arg.get_help().map(|h| h.to_string()).unwrap_or_default()
}

/// Answer kubectl: the candidates for the last of `words`, in Cobra's format.
pub async fn run(root: &Command, words: &[String]) {
    let prefix = words.last().map_or("", String::as_str);
    let (want, connection) = want(root, words);
    let candidates = match want {
        Want::Words(words) => words,
        Want::Tenant => names::<Tenant>(&connection, prefix).await,
        Want::Plan => names::<TenantQuota>(&connection, prefix).await,
        Want::Nothing => Vec::new(),
    };
    for (value, help) in candidates {
        match help.lines().next().filter(|h| !h.is_empty()) {
            Some(help) => println!("{value}\t{help}"),
            None => println!("{value}"),
        }
    }
    println!(":{NO_FILES}");
}

/// The names of the cluster's `K` objects that start with `prefix`; none when the cluster
/// cannot be asked within [`ASK_FOR`].
async fn names<K>(connection: &Connection, prefix: &str) -> Vec<(String, String)>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    K::DynamicType: Default,
{
    let ask = async {
        let client = crate::cluster::client(
            connection.kubeconfig.as_deref(),
            connection.context.as_deref(),
        )
        .await
        .ok()?;
        let list = Api::<K>::all(client)
            .list_metadata(&ListParams::default())
            .await
            .ok()?;
        Some(
            list.items
                .into_iter()
                .filter_map(|o| o.metadata.name)
                .filter(|n| n.starts_with(prefix))
                .map(|n| (n, String::new()))
                .collect(),
        )
    };
    tokio::time::timeout(ASK_FOR, ask)
        .await
        .ok()
        .flatten()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;
    use crate::cli::Cli;

    fn complete(line: &str) -> (Want, Connection) {
        let mut words: Vec<String> = line.split(' ').map(str::to_string).collect();
        if line.is_empty() {
            words = vec![String::new()];
        }
        want(&Cli::command(), &words)
    }

    fn words(w: &Want) -> Vec<&str> {
        match w {
            Want::Words(words) => words.iter().map(|(w, _)| w.as_str()).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn subcommands_then_names_then_flags_and_their_values() {
        assert_eq!(
            words(&complete("").0),
            [
                "list",
                "get",
                "plans",
                "create",
                "update",
                "delete",
                "suspend",
                "resume",
                "hibernate",
                "wake",
                "archive",
                "restore",
                "migrate",
                "usage",
                "stats",
                "completion"
            ]
        );
        assert_eq!(words(&complete("s").0), ["suspend", "stats"]);
        let (w, _) = complete("su");
        assert_eq!(
            w,
            Want::Words(vec![(
                "suspend".into(),
                "Suspend a tenant: nothing new starts, owners may only view (spec.state: Suspended)"
                    .into()
            )])
        );
        assert_eq!(complete("suspend ").0, Want::Tenant);
        assert_eq!(complete("suspend ac").0, Want::Tenant);
        assert_eq!(complete("suspend acme ").0, Want::Nothing);
        assert_eq!(
            words(&complete("suspend acme --w").0),
            ["--wait"],
            "flags of the subcommand"
        );
        assert_eq!(
            words(&complete("get acme --k").0),
            ["--kubeconfig"],
            "global flags"
        );
        assert_eq!(words(&complete("get acme -o ").0), ["yaml", "json", "name"]);
        assert_eq!(words(&complete("get acme --output j").0), ["json"]);
        assert_eq!(
            words(&complete("suspend acme --dry-run ").0),
            ["none", "client", "server"]
        );
        assert_eq!(complete("update acme --plan ").0, Want::Plan);
        assert_eq!(
            complete("create acme --plan free --display-name ").0,
            Want::Nothing
        );
        assert_eq!(words(&complete("completion z").0), ["zsh"]);
        // A flag's value is not taken for the tenant's name.
        assert_eq!(complete("usage --period 2026-03 ").0, Want::Tenant);
    }

    #[test]
    fn the_connection_flags_before_the_word_are_kept() {
        let (w, connection) = complete("--context prod --kubeconfig=/k/config suspend ");
        assert_eq!(w, Want::Tenant);
        assert_eq!(
            connection,
            Connection {
                kubeconfig: Some("/k/config".into()),
                context: Some("prod".into()),
            }
        );
    }
}
