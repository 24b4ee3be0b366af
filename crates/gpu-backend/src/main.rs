//! `mailsort-backend`: serve the reranking API.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use mailsort_backend::auth::ApiKeys;
use mailsort_backend::config::ServeConfig;
use mailsort_backend::http::listen::{self, ConnectionLimits};
use mailsort_backend::http::openapi;
use mailsort_backend::http::server::{AppState, Timeouts, router};
use mailsort_backend::metrics::Metrics;
use mailsort_backend::startup;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

/// How far past the longest allowed deadline a request may run before the
/// last-resort timeout answers 408: the deadline answers 504 well before.
const REQUEST_TIMEOUT_MARGIN: Duration = Duration::from_secs(10);

/// Reranks the candidate labels of ambiguous e-mails (see README).
#[derive(Parser)]
#[command(name = "mailsort-backend", version)]
struct Cli {
    #[command(flatten)]
    config: ServeConfig,
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("MAILSORT_LOG")
                .unwrap_or_else(|_| EnvFilter::new("info,ort=warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let cli = Cli::parse();
    if let Err(err) = run(cli.config).await {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}

async fn run(config: ServeConfig) -> Result<()> {
    let keys = if config.no_auth {
        tracing::warn!("--no-auth: /v1 endpoints accept requests without an API key");
        None
    } else {
        if !config.api_keys.is_empty() {
            // The initial environment cannot be wiped from /proc/PID/environ.
            tracing::warn!(
                "API keys from MAILSORT_API_KEYS (or --api-keys) stay readable in /proc/{}/environ (or the command line) to this user and root; prefer --api-keys-file",
                std::process::id()
            );
        }
        Some(ApiKeys::load(
            &config.api_keys,
            config.api_keys_file.as_deref(),
        )?)
    };
    let metrics = Arc::new(Metrics::new());
    let state = AppState::new(
        keys,
        metrics.clone(),
        config.max_concurrent,
        config.max_body_bytes,
        Timeouts {
            body: Duration::from_millis(config.body_timeout_ms),
            request: Duration::from_millis(config.max_deadline_ms) + REQUEST_TIMEOUT_MARGIN,
        },
        openapi::document(),
    );
    let limits = ConnectionLimits {
        max_connections: config.max_connections,
        header_timeout: Duration::from_millis(config.header_timeout_ms),
    };
    let listener = TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("cannot listen on {}", config.bind))?;
    tracing::info!(
        "listening on {} (ready once models are loaded)",
        listener.local_addr()?
    );

    // Load in the background so /health answers meanwhile; a failure ends
    // the process (an orchestrator restarts it and shows the log).
    let loader = {
        let state = state.clone();
        tokio::task::spawn_blocking(move || {
            let (engine, batcher) = startup::load(&config, metrics)?;
            state.set_engine(engine);
            Ok::<_, startup::StartupError>(batcher)
        })
    };
    let app = router(state.clone());
    let mut server = tokio::spawn(async move {
        listen::serve(listener, app, limits, shutdown_signal()).await;
        Ok::<_, std::io::Error>(())
    });
    let batcher = tokio::select! {
        loaded = loader => loaded.context("loader task")?.context("cannot start")?,
        served = &mut server => { served.context("server task")??; return Ok(()); }
    };
    server.await.context("server task")??;
    tracing::info!("drained in-flight requests; stopping the batcher");
    drop(state);
    tokio::task::spawn_blocking(move || batcher.join()).await?;
    Ok(())
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal: finishing in-flight requests");
}
