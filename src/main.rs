//! The pairpad server binary: reads configuration, sets up logging, binds the
//! listener and serves until SIGINT/SIGTERM.

/// jemalloc, bounded: see `server::memory` for why both.
#[cfg(feature = "ssr")]
#[global_allocator]
static ALLOCATOR: pairpad::server::memory::BoundedJemalloc =
    pairpad::server::memory::BoundedJemalloc;

/// Threads for blocking storage calls.
#[cfg(feature = "ssr")]
const BLOCKING_THREADS: usize = 4;

#[cfg(feature = "ssr")]
fn main() -> std::process::ExitCode {
    use clap::Parser;
    let config = pairpad::server::config::Config::parse();
    pairpad::server::memory::allow_allocations_for(config.largest_byte_limit());
    init_tracing(&config);
    let mut builder = match config.worker_threads {
        0 | 1 => tokio::runtime::Builder::new_current_thread(),
        n => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(n);
            builder
        }
    };
    // Blocking calls are storage reads and snapshots of one embedded database:
    // a few threads serve them as fast as many, and each extra thread would keep
    // its own stack (thousands of sessions loading at once otherwise start
    // hundreds).
    let runtime = builder
        .max_blocking_threads(BLOCKING_THREADS)
        .enable_all()
        .build();
    match runtime {
        Ok(runtime) => runtime.block_on(run(config)),
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(feature = "ssr")]
async fn run(config: pairpad::server::config::Config) -> std::process::ExitCode {
    use pairpad::server::{bind, serve};
    let listener = match bind(config.addr) {
        Ok(listener) => listener,
        Err(e) => {
            tracing::error!(addr = %config.addr, error = %e, "cannot listen");
            return std::process::ExitCode::FAILURE;
        }
    };
    match serve(config, listener, shutdown_signal()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(feature = "ssr")]
fn init_tracing(config: &pairpad::server::config::Config) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_new(&config.log).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if config.log_json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Resolves on Ctrl+C or SIGTERM.
#[cfg(feature = "ssr")]
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown signal received");
}

#[cfg(not(feature = "ssr"))]
fn main() {
    // The browser side has no binary; `hydrate()` in lib.rs is its entry point.
}
