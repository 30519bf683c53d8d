//! `kube-test`: serve the in-memory API server and write a kubeconfig.
use clap::Parser;

#[derive(Parser)]
#[command(about = "In-memory Kubernetes API server for tests and local development")]
struct Args {
    /// Port to listen on (127.0.0.1); 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Write a kubeconfig for the server to this path.
    #[arg(long)]
    kubeconfig: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let server =
        kube_test::ApiServer::start_on(std::net::SocketAddr::from(([127, 0, 0, 1], args.port)))
            .await?;
    if let Some(p) = &args.kubeconfig {
        server.write_kubeconfig(p)?;
    }
    println!("{}", server.url());
    tokio::signal::ctrl_c().await?;
    server.shutdown().await;
    Ok(())
}
