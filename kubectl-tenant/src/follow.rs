//! `--wait`: follow a tenant through a watch until [`progress::assess`] says the change is
//! done or failed. On a terminal a progress bar shows the phase and, during a migration,
//! the objects copied; when piped, one line per change.

use std::io::IsTerminal;
use std::time::Duration;

use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use kube::Client;
use kube::runtime::{WatchStreamExt, watcher};

use crate::cluster::{self, Fetched};
use crate::failure::Failure;
use crate::format::tenant_ref;
use crate::progress::{Goal, Progress, Verdict, assess};

/// Follow tenant `name` until `goal` is reached by the status of `generation` or later.
pub async fn follow(
    client: &Client,
    name: &str,
    goal: Goal,
    generation: i64,
    timeout: Duration,
) -> Result<(), Failure> {
    let mut view = View::new(name);
    let mut last = None;
    let watched = watch(client, name, goal, generation, &mut view, &mut last);
    let outcome = tokio::time::timeout(timeout, watched).await;
    view.finish();
    match outcome {
        Ok(Ok(())) => {
            println!("{}", done_line(name, goal));
            Ok(())
        }
        Ok(Err(why)) => Err(Failure::new(format!("tenant {name:?} failed: {why}"))),
        Err(_) => Err(Failure::timeout(format!(
            "timed out after {} waiting for tenant {name:?} to reach {} (last seen: {}); \
             --timeout waits longer",
            duration(timeout),
            goal.describe(),
            last.as_ref()
                .map_or("nothing yet".to_string(), Progress::line),
        ))),
    }
}

async fn watch(
    client: &Client,
    name: &str,
    goal: Goal,
    generation: i64,
    view: &mut View,
    last: &mut Option<Progress>,
) -> Result<(), String> {
    let events = watcher::watch_object(cluster::tenants(client), name).default_backoff();
    let mut events = std::pin::pin!(events);
    while let Some(event) = events.next().await {
        // Transient watch errors are retried with backoff; the timeout bounds them.
        let Ok(object) = event else { continue };
        let fetched = match object {
            Some(o) => Some(
                serde_json::to_value(o)
                    .map_err(|e| e.to_string())
                    .and_then(|raw| Fetched::from_raw(raw).map_err(|f| f.message))?,
            ),
            None => None,
        };
        let tenant = fetched.as_ref().map(|f| &f.tenant);
        let error = fetched.as_ref().and_then(Fetched::migration_error);
        match assess(tenant, error, goal, generation) {
            Verdict::Done => return Ok(()),
            Verdict::Failed(why) => return Err(why),
            Verdict::Waiting(progress) => {
                if last.as_ref() != Some(&progress) {
                    view.show(&progress);
                    *last = Some(progress);
                }
            }
        }
    }
    Err("the watch ended".into())
}

/// `tenant.landlord.dev/acme is Suspended`.
pub fn done_line(name: &str, goal: Goal) -> String {
    match goal {
        Goal::Phase(p) => format!("{} is {p:?}", tenant_ref(name)),
        Goal::Migrated(_) => format!("{} migrated", tenant_ref(name)),
        Goal::Gone => format!("{} is gone", tenant_ref(name)),
    }
}

/// `10m`, `90s`, `1h`, `250ms`: a `--timeout` as it was likely written.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs();
    match (s, d.subsec_millis()) {
        (0, ms) => format!("{ms}ms"),
        (s, 0) if s % 3600 == 0 => format!("{}h", s / 3600),
        (s, 0) if s % 60 == 0 => format!("{}m", s / 60),
        (s, 0) => format!("{s}s"),
        (s, ms) => format!("{s}.{ms:03}s"),
    }
}

/// A progress bar on a terminal, plain lines on stdout otherwise.
enum View {
    Bar(ProgressBar),
    Lines(String),
}

impl View {
    /// The bar (drawn on stderr) only when output goes to a terminal: `... --wait | tee log`
    /// gets the lines.
    fn new(name: &str) -> View {
        if std::io::stdout().is_terminal() && std::io::stderr().is_terminal() {
            let bar = ProgressBar::new_spinner().with_prefix(tenant_ref(name));
            bar.set_style(spinner_style());
            bar.enable_steady_tick(Duration::from_millis(100));
            View::Bar(bar)
        } else {
            View::Lines(tenant_ref(name))
        }
    }

    fn show(&mut self, progress: &Progress) {
        match self {
            View::Lines(prefix) => println!("{prefix}: {}", progress.line()),
            View::Bar(bar) => {
                match &progress.migration {
                    Some(m) => {
                        bar.set_style(bar_style());
                        bar.set_length(m.total);
                        bar.set_position(m.completed);
                    }
                    None => bar.set_style(spinner_style()),
                }
                bar.set_message(progress.line());
            }
        }
    }

    fn finish(&mut self) {
        if let View::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {prefix}: {msg}").expect("a valid template")
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {prefix}: [{bar:30}] {msg}")
        .expect("a valid template")
        .progress_chars("#>-")
}

#[cfg(test)]
mod tests {
    use super::*;
    use landlord::api::{MigrationMode, Phase};

    #[test]
    fn final_lines_and_timeouts_read_as_written() {
        assert_eq!(
            done_line("acme", Goal::Phase(Phase::Hibernated)),
            "tenant.landlord.dev/acme is Hibernated"
        );
        assert_eq!(
            done_line("acme", Goal::Migrated(MigrationMode::Move)),
            "tenant.landlord.dev/acme migrated"
        );
        assert_eq!(duration(Duration::from_secs(600)), "10m");
        assert_eq!(duration(Duration::from_secs(3600)), "1h");
        assert_eq!(duration(Duration::from_secs(90)), "90s");
        assert_eq!(duration(Duration::from_millis(1500)), "1.500s");
        assert_eq!(duration(Duration::from_millis(250)), "250ms");
    }
}
