//! `cairn`: the server binary. Flags, defaults and environment variables are etcd's.

/// mimalloc: the server allocates and frees many small buffers per request (protobuf
/// messages, HTTP/2 frames, storage keys); glibc's malloc spent a sixth of the leader's CPU
/// on them under a put load.
#[cfg(not(madsim))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    use std::io::{IsTerminal as _, Write as _};
    use std::process::ExitCode;
    use std::sync::Arc;

    use cairn_core::storage::fjall::FjallEngine;
    use cairn_node::config::{Config, ETCD_COMPAT_VERSION};
    use tracing_subscriber::fmt::FmtContext;
    use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
    use tracing_subscriber::fmt::time::FormatTime;
    use tracing_subscriber::fmt::writer::BoxMakeWriter;
    use tracing_subscriber::registry::LookupSpan;

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
            // `write!`, not `println!`: a closed pipe (`cairn --version | head -1`) is not a panic.
            let mut out = std::io::stdout().lock();
            let _ = write!(
                out,
                "cairn Version: {}\netcd API Version: {ETCD_COMPAT_VERSION}\nOS/Arch: {}/{}\n",
                env!("CARGO_PKG_VERSION"),
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
    /// `--log-format json` (one JSON object a line, as etcd's zap logger writes them;
    /// `RUST_LOG` overrides the level).
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
        // Colours only on a terminal (etcd's zap logger never colours).
        let (writer, ansi) = match output {
            "default" | "stderr" => (
                BoxMakeWriter::new(std::io::stderr),
                std::io::stderr().is_terminal(),
            ),
            "stdout" => (
                BoxMakeWriter::new(std::io::stdout),
                std::io::stdout().is_terminal(),
            ),
            path => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| format!("cannot open log output {path}: {e}"))?;
                (BoxMakeWriter::new(std::sync::Mutex::new(file)), false)
            }
        };
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(ansi)
            .with_writer(writer);
        if config.log_json {
            builder.event_format(ZapJson).init();
        } else {
            builder.init();
        }
        Ok(())
    }

    /// One JSON object per event with zap's production keys: `level` (lower case), `ts`
    /// (RFC 3339), `caller` (the module), `msg`, then the event's fields.
    struct ZapJson;

    impl<S, N> FormatEvent<S, N> for ZapJson
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a>,
        N: for<'a> FormatFields<'a> + 'static,
    {
        fn format_event(
            &self,
            _ctx: &FmtContext<'_, S, N>,
            mut writer: Writer<'_>,
            event: &tracing::Event<'_>,
        ) -> std::fmt::Result {
            let mut ts = String::new();
            tracing_subscriber::fmt::time::SystemTime.format_time(&mut Writer::new(&mut ts))?;
            let meta = event.metadata();
            let mut fields = JsonFields(serde_json::Map::new());
            event.record(&mut fields);
            let msg = fields.0.remove("message").unwrap_or_default();
            // zap's order: level, ts, caller, msg, then the fields.
            let head: [(String, serde_json::Value); 4] = [
                ("level".into(), meta.level().as_str().to_lowercase().into()),
                ("ts".into(), ts.into()),
                ("caller".into(), meta.target().into()),
                ("msg".into(), msg),
            ];
            let mut line = String::from("{");
            for (i, (key, value)) in head.into_iter().chain(fields.0).enumerate() {
                if i > 0 {
                    line.push(',');
                }
                line.push_str(&serde_json::Value::from(key).to_string());
                line.push(':');
                line.push_str(&value.to_string());
            }
            line.push('}');
            writeln!(writer, "{line}")
        }
    }

    /// An event's fields as JSON values.
    struct JsonFields(serde_json::Map<String, serde_json::Value>);

    impl tracing::field::Visit for JsonFields {
        fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
            self.0
                .insert(field.name().into(), format!("{value:?}").into());
        }

        fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
            self.0.insert(field.name().into(), value.into());
        }

        fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
            self.0.insert(field.name().into(), value.into());
        }

        fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
            self.0.insert(field.name().into(), value.into());
        }

        fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
            self.0.insert(field.name().into(), value.into());
        }
    }

    /// How long a member that hit a fatal error (a full disk, a failed fsync) lets its
    /// pending answers reach clients before it exits.
    const FATAL_FLUSH_LIMIT: std::time::Duration = std::time::Duration::from_secs(2);

    async fn serve(config: Config) -> Result<(), String> {
        let member_dir = config.data_dir.join("member");
        std::fs::create_dir_all(&member_dir)
            .map_err(|e| format!("cannot create data dir {}: {e}", member_dir.display()))?;
        let engine = Arc::new(FjallEngine::open(&member_dir).map_err(|e| e.to_string())?);
        let mut node = cairn_node::start(&config, engine.clone())
            .await
            .map_err(|e| e.to_string())?;
        tokio::select! {
            result = node.wait() => {
                let Err(fatal) = result else { return Ok(()) };
                node.close_after_fatal(FATAL_FLUSH_LIMIT).await;
                return Err(format!("fatal: {fatal}"));
            }
            _ = shutdown_signal() => tracing::info!("received a termination signal, shutting down"),
        }
        node.stop().await.map_err(|e| e.to_string())?;
        // A clean stop leaves no journal to replay: the next start opens at once.
        tokio::task::spawn_blocking(move || engine.flush_memtables())
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
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
