//! `cairn`: the server binary. Flags, defaults and environment variables are etcd's.

#[cfg(not(madsim))]
fn main() -> std::process::ExitCode {
    real::main()
}

#[cfg(madsim)]
fn main() {
    eprintln!("cairn: the server binary is not built for simulation; use cairn-sim");
}

#[cfg(not(madsim))]
mod real {
    use std::process::ExitCode;
    use std::sync::Arc;

    use cairn_core::storage::fjall::FjallEngine;
    use cairn_node::config::{Config, ETCD_COMPAT_VERSION};
    use tracing_subscriber::fmt::writer::BoxMakeWriter;

    pub fn main() -> ExitCode {
        let flags = match Config::from_args(std::env::args()) {
            Ok(flags) => flags,
            Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelp => {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            Err(e) => {
                let _ = e.print();
                return ExitCode::FAILURE;
            }
        };
        if flags.version {
            println!("cairn Version: {}", env!("CARGO_PKG_VERSION"));
            println!("etcd API Version: {ETCD_COMPAT_VERSION}");
            println!(
                "OS/Arch: {}/{}",
                std::env::consts::OS,
                std::env::consts::ARCH
            );
            return ExitCode::SUCCESS;
        }
        let config = match Config::from_flags(flags) {
            Ok(config) => config,
            Err(e) => {
                eprintln!("cairn: {e}");
                return ExitCode::FAILURE;
            }
        };
        if let Err(e) = init_logging(&config) {
            eprintln!("cairn: {e}");
            return ExitCode::FAILURE;
        }
        let runtime = match tokio::runtime::Runtime::new() {
            Ok(runtime) => runtime,
            Err(e) => {
                eprintln!("cairn: cannot start the runtime: {e}");
                return ExitCode::FAILURE;
            }
        };
        match runtime.block_on(serve(config)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!("{e}");
                eprintln!("cairn: {e}");
                ExitCode::FAILURE
            }
        }
    }

    /// `--log-level`, `--log-outputs` (stderr, stdout or files: the first is used) and
    /// `--log-format json` (one JSON object a line, zap's `level`/`ts`/`msg` and the event's
    /// fields; `RUST_LOG` overrides the level).
    fn init_logging(config: &Config) -> Result<(), String> {
        let level = match config.log_level.as_str() {
            "panic" | "fatal" => "error",
            "debug" | "info" | "warn" | "error" => config.log_level.as_str(),
            other => return Err(format!("unknown log level {other:?}")),
        };
        let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new(format!(
                "{level},raft=warn,fjall=warn,lsm_tree=warn"
            ))
        });
        let output = config.log_outputs.first().map_or("default", String::as_str);
        let writer = match output {
            "default" | "stderr" => BoxMakeWriter::new(std::io::stderr),
            "stdout" => BoxMakeWriter::new(std::io::stdout),
            path => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| format!("cannot open log output {path}: {e}"))?;
                BoxMakeWriter::new(std::sync::Mutex::new(file))
            }
        };
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(writer);
        if config.log_json {
            builder
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .init();
        } else {
            builder.init();
        }
        Ok(())
    }

    async fn serve(config: Config) -> Result<(), String> {
        let member_dir = config.data_dir.join("member");
        std::fs::create_dir_all(&member_dir)
            .map_err(|e| format!("cannot create data dir {}: {e}", member_dir.display()))?;
        let engine = FjallEngine::open(&member_dir).map_err(|e| e.to_string())?;
        let mut node = cairn_node::start(&config, Arc::new(engine))
            .await
            .map_err(|e| e.to_string())?;
        tokio::select! {
            result = node.wait() => return result.map_err(|e| format!("fatal: {e}")),
            _ = shutdown_signal() => tracing::info!("received a termination signal, shutting down"),
        }
        node.stop().await.map_err(|e| e.to_string())
    }

    async fn shutdown_signal() {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
}
