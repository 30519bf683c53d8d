//! The `landlord` binary: a thin command line over the library.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use landlord::telemetry::{self, LogFormat};

/// Landlord runs multi-tenancy for a Kubernetes cluster: tenants, plans, isolation, quotas
/// and an embedded quota engine.
#[derive(Parser, Debug)]
#[command(name = "landlord", version, about, long_about = None)]
struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "LANDLORD_LOG_FORMAT")]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the operator against the cluster in KUBECONFIG or the in-cluster config.
    Run(Box<landlord::operator::Options>),
    /// Start an embedded API server with the CRDs, the example tenants and the operator.
    #[cfg(feature = "dev")]
    Dev(landlord::dev::Options),
    /// Print the CustomResourceDefinitions as YAML, or write one file per CRD into --dir.
    Crdgen {
        /// Write `<crd name>.yaml` files into this directory instead of printing.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Read archives without the operator: list a store, or show one archive (verified).
    Archive {
        #[command(subcommand)]
        command: ArchiveCommand,
    },
    /// Print the version.
    Version,
}

#[derive(Subcommand, Debug)]
enum ArchiveCommand {
    /// Every archive in the store: time, tenant, size, location.
    List {
        /// The store, as the operator's --archive-url (S3 settings from the same env vars).
        #[arg(long, env = "LANDLORD_ARCHIVE_URL")]
        url: String,
    },
    /// Decrypt and verify one archive and print its objects as YAML (pipe them to
    /// `kubectl apply --server-side -f -` to restore by hand), or its manifest.
    Show {
        /// A location as `list` or `status.archive.location` shows it.
        location: String,
        #[arg(long, env = "LANDLORD_ARCHIVE_URL")]
        url: String,
        /// The Secret with the keys (read only).
        #[arg(
            long,
            default_value = "landlord-archive-key",
            env = "LANDLORD_ARCHIVE_KEY_SECRET"
        )]
        key_secret: String,
        /// The Secret's namespace: the operator's.
        #[arg(long, default_value = "default", env = "POD_NAMESPACE")]
        namespace: String,
        /// Print the manifest (tenant, spec, counts, checksums) instead of the objects.
        #[arg(long)]
        manifest: bool,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(options) => {
            telemetry::init(cli.log_format);
            tracing::info!(version = env!("CARGO_PKG_VERSION"), "starting");
            landlord::operator::run(*options).await
        }
        #[cfg(feature = "dev")]
        Command::Dev(options) => {
            telemetry::init(cli.log_format);
            landlord::dev::run(options).await
        }
        Command::Crdgen { dir: None } => {
            print!("{}", landlord::api::crds_yaml()?);
            Ok(())
        }
        Command::Crdgen { dir: Some(dir) } => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            for crd in landlord::api::crds() {
                let name = crd.metadata.name.clone().unwrap_or_default();
                let path = dir.join(format!("{name}.yaml"));
                let yaml = format!("---\n{}", serde_saphyr::to_string(&crd)?);
                std::fs::write(&path, yaml)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            Ok(())
        }
        Command::Archive { command } => {
            use landlord::archive::{ArchiveStore, inspect};
            match command {
                ArchiveCommand::List { url } => {
                    let store = ArchiveStore::from_url(&url, &inspect::s3_from_env())?;
                    print!("{}", inspect::list(&store).await?);
                }
                ArchiveCommand::Show {
                    location,
                    url,
                    key_secret,
                    namespace,
                    manifest,
                } => {
                    let store = ArchiveStore::from_url(&url, &inspect::s3_from_env())?;
                    let client = kube::Client::try_default()
                        .await
                        .context("connecting to Kubernetes for the archive keys")?;
                    let keys = inspect::keys(&client, &namespace, &key_secret).await?;
                    print!(
                        "{}",
                        inspect::show(&store, &location, &keys, manifest).await?
                    );
                }
            }
            Ok(())
        }
        Command::Version => {
            println!("landlord {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
    }
}
