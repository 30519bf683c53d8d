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
    /// Print the version.
    Version,
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
        Command::Version => {
            println!("landlord {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
    }
}
