//! The `cairn` command line: etcd's flag names, defaults and `ETCD_*` environment variables.
//!
//! Like etcd (Go's `flag` package) both `-name` and `--name` are accepted, and `--flag=value`
//! as well as `--flag value`. An unknown flag or a malformed URL is an error (exit 1).

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use url::Url;

/// The version of the etcd API cairn reports (`Status.version`, `--version`).
pub const ETCD_COMPAT_VERSION: &str = "3.5.17";

/// cairn: a replicated key-value store that speaks etcd's v3 API.
#[derive(Debug, Clone, Parser)]
#[command(name = "cairn", disable_version_flag = true)]
pub struct Flags {
    /// Human-readable name for this member.
    #[arg(long, env = "ETCD_NAME", default_value = "default")]
    pub name: String,
    /// Path to the data directory (default: ${name}.etcd).
    #[arg(long, env = "ETCD_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// List of URLs to listen on for client traffic.
    #[arg(
        long,
        env = "ETCD_LISTEN_CLIENT_URLS",
        default_value = "http://localhost:2379"
    )]
    pub listen_client_urls: String,
    /// List of this member's client URLs to advertise to the public.
    #[arg(
        long,
        env = "ETCD_ADVERTISE_CLIENT_URLS",
        default_value = "http://localhost:2379"
    )]
    pub advertise_client_urls: String,
    /// List of URLs to listen on for peer traffic.
    #[arg(
        long,
        env = "ETCD_LISTEN_PEER_URLS",
        default_value = "http://localhost:2380"
    )]
    pub listen_peer_urls: String,
    /// List of this member's peer URLs to advertise to the rest of the cluster.
    #[arg(
        long,
        env = "ETCD_INITIAL_ADVERTISE_PEER_URLS",
        default_value = "http://localhost:2380"
    )]
    pub initial_advertise_peer_urls: String,
    /// Initial cluster configuration for bootstrapping (name=peerURL,...).
    #[arg(long, env = "ETCD_INITIAL_CLUSTER")]
    pub initial_cluster: Option<String>,
    /// Initial cluster token for the etcd cluster during bootstrap.
    #[arg(
        long,
        env = "ETCD_INITIAL_CLUSTER_TOKEN",
        default_value = "etcd-cluster"
    )]
    pub initial_cluster_token: String,
    /// Initial cluster state ('new' or 'existing').
    #[arg(long, env = "ETCD_INITIAL_CLUSTER_STATE", default_value = "new")]
    pub initial_cluster_state: String,
    /// Time (in milliseconds) of a heartbeat interval.
    #[arg(long, env = "ETCD_HEARTBEAT_INTERVAL", default_value_t = 100)]
    pub heartbeat_interval: u64,
    /// Time (in milliseconds) for an election to timeout.
    #[arg(long, env = "ETCD_ELECTION_TIMEOUT", default_value_t = 1000)]
    pub election_timeout: u64,
    /// Number of committed transactions to trigger a snapshot to disk.
    #[arg(long, env = "ETCD_SNAPSHOT_COUNT", default_value_t = 100_000)]
    pub snapshot_count: u64,
    /// Raise alarms when backend size exceeds the given quota (0 defaults to low space quota).
    #[arg(long, env = "ETCD_QUOTA_BACKEND_BYTES", default_value_t = 0)]
    pub quota_backend_bytes: i64,
    /// Maximum client request size in bytes the server will accept.
    #[arg(long, env = "ETCD_MAX_REQUEST_BYTES", default_value_t = 1_572_864)]
    pub max_request_bytes: u32,
    /// Maximum number of operations permitted in a transaction.
    #[arg(long, env = "ETCD_MAX_TXN_OPS", default_value_t = 128)]
    pub max_txn_ops: u32,
    /// Configures log level: debug, info, warn, error, panic, or fatal.
    #[arg(long, env = "ETCD_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
    /// Duration of periodic watch progress notifications (a Go duration: 10m0s, 500ms).
    #[arg(
        long,
        env = "ETCD_EXPERIMENTAL_WATCH_PROGRESS_NOTIFY_INTERVAL",
        default_value = "10m0s"
    )]
    pub experimental_watch_progress_notify_interval: String,
    /// Number of entries for a slow follower to catch up after compacting the raft storage
    /// entries.
    #[arg(
        long,
        env = "ETCD_EXPERIMENTAL_SNAPSHOT_CATCHUP_ENTRIES",
        default_value_t = 5000
    )]
    pub experimental_snapshot_catchup_entries: u64,
    /// Path to the client server TLS cert file.
    #[arg(long, env = "ETCD_CERT_FILE", default_value = "")]
    pub cert_file: String,
    /// Path to the client server TLS key file.
    #[arg(long, env = "ETCD_KEY_FILE", default_value = "")]
    pub key_file: String,
    /// Enable client cert authentication.
    #[arg(long, env = "ETCD_CLIENT_CERT_AUTH", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub client_cert_auth: bool,
    /// Path to the client server TLS trusted CA cert file.
    #[arg(long, env = "ETCD_TRUSTED_CA_FILE", default_value = "")]
    pub trusted_ca_file: String,
    /// Client TLS using generated certificates.
    #[arg(long, env = "ETCD_AUTO_TLS", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub auto_tls: bool,
    /// Path to the peer server TLS cert file.
    #[arg(long, env = "ETCD_PEER_CERT_FILE", default_value = "")]
    pub peer_cert_file: String,
    /// Path to the peer server TLS key file.
    #[arg(long, env = "ETCD_PEER_KEY_FILE", default_value = "")]
    pub peer_key_file: String,
    /// Enable peer client cert authentication.
    #[arg(long, env = "ETCD_PEER_CLIENT_CERT_AUTH", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub peer_client_cert_auth: bool,
    /// Path to the peer server TLS trusted CA file.
    #[arg(long, env = "ETCD_PEER_TRUSTED_CA_FILE", default_value = "")]
    pub peer_trusted_ca_file: String,
    /// Peer TLS using generated certificates.
    #[arg(long, env = "ETCD_PEER_AUTO_TLS", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub peer_auto_tls: bool,
    /// Allowed CN for inter peer authentication.
    #[arg(long, env = "ETCD_PEER_CERT_ALLOWED_CN", default_value = "")]
    pub peer_cert_allowed_cn: String,
    /// Comma-separated list of supported TLS cipher suites between client/server and peers
    /// (empty will be auto-populated by Go).
    #[arg(long, env = "ETCD_CIPHER_SUITES", default_value = "")]
    pub cipher_suites: String,
    /// Minimum TLS version supported by etcd (TLS1.2 or TLS1.3).
    #[arg(long, env = "ETCD_TLS_MIN_VERSION", default_value = "TLS1.2")]
    pub tls_min_version: String,
    /// Maximum TLS version supported by etcd (empty: the highest the implementation supports).
    #[arg(long, env = "ETCD_TLS_MAX_VERSION", default_value = "")]
    pub tls_max_version: String,
    /// Specify auth token type and its options (cairn serves 'simple' tokens only).
    #[arg(long, env = "ETCD_AUTH_TOKEN", default_value = "simple")]
    pub auth_token: String,
    /// The lifetime in seconds of the auth token.
    #[arg(long, env = "ETCD_AUTH_TOKEN_TTL", default_value_t = 300)]
    pub auth_token_ttl: u64,
    /// Specify bcrypt algorithm cost factor for auth password hashing (4..=31).
    #[arg(long, env = "ETCD_BCRYPT_COST", default_value_t = DEFAULT_BCRYPT_COST)]
    pub bcrypt_cost: u32,
    /// List of additional URLs to listen on that will respond to both the /metrics and
    /// /health endpoints.
    #[arg(long, env = "ETCD_LISTEN_METRICS_URLS", default_value = "")]
    pub listen_metrics_urls: String,
    /// Interpret 'auto-compaction-retention' one of: periodic|revision.
    #[arg(long, env = "ETCD_AUTO_COMPACTION_MODE", default_value = "periodic")]
    pub auto_compaction_mode: String,
    /// Auto compaction retention for mvcc key value store. 0 means disable auto compaction.
    #[arg(long, env = "ETCD_AUTO_COMPACTION_RETENTION", default_value = "0")]
    pub auto_compaction_retention: String,
    /// cairn: how often the revision auto-compactor checks (etcd: always 5m0s).
    #[arg(
        long,
        env = "ETCD_EXPERIMENTAL_AUTO_COMPACTION_CHECK_INTERVAL",
        default_value = "5m0s"
    )]
    pub experimental_auto_compaction_check_interval: String,
    /// Path to the server configuration file (YAML, etcd's keys). Note that if a
    /// configuration file is provided, other command line flags and environment variables
    /// will be ignored.
    #[arg(long, env = "ETCD_CONFIG_FILE")]
    pub config_file: Option<PathBuf>,
    /// Specify 'zap' for structured logging or 'capnslog' (both log through cairn's logger).
    #[arg(long, env = "ETCD_LOGGER", default_value = "zap")]
    pub logger: String,
    /// Specify 'stdout' or 'stderr' to skip journald logging even when running under
    /// systemd, or list of comma separated output targets.
    #[arg(long, env = "ETCD_LOG_OUTPUTS", default_value = "default")]
    pub log_outputs: String,
    /// Configures log format. Only supports json, console.
    #[arg(long, env = "ETCD_LOG_FORMAT", default_value = "console")]
    pub log_format: String,
    /// Print the version and exit.
    #[arg(long)]
    pub version: bool,
}

/// etcd's default bcrypt cost (Go's `bcrypt.DefaultCost`).
pub const DEFAULT_BCRYPT_COST: u32 = 10;
/// The bcrypt costs etcd accepts (Go's `bcrypt.MinCost..=bcrypt.MaxCost`).
pub const BCRYPT_COSTS: std::ops::RangeInclusive<u32> = 4..=31;

/// Why the flags cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A URL flag holds something that is not an http(s) URL with a host and port.
    #[error("invalid value {value:?} for flag --{flag}: {reason}")]
    BadUrl {
        /// The flag.
        flag: &'static str,
        /// The offending value.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// Another flag has an unusable value.
    #[error("invalid value {value:?} for flag --{flag}: {reason}")]
    BadValue {
        /// The flag.
        flag: &'static str,
        /// The offending value.
        value: String,
        /// What is wrong.
        reason: String,
    },
}

/// Validated configuration of one member.
#[derive(Debug, Clone)]
pub struct Config {
    /// Member name.
    pub name: String,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Addresses to serve clients on.
    pub listen_client_addrs: Vec<SocketAddr>,
    /// Those of `listen_client_addrs` given as `https://` URLs: served with `client_tls`.
    pub tls_client_addrs: Vec<SocketAddr>,
    /// TLS of the client listeners (required when any client URL is `https://`).
    pub client_tls: Option<TlsSettings>,
    /// Those of `listen_peer_addrs` given as `https://` URLs: served with `peer_tls`.
    pub tls_peer_addrs: Vec<SocketAddr>,
    /// TLS of the peer listeners and of this member's connections to its peers.
    pub peer_tls: Option<TlsSettings>,
    /// Client URLs advertised in MemberList.
    pub advertise_client_urls: Vec<String>,
    /// Addresses to serve peers on.
    pub listen_peer_addrs: Vec<SocketAddr>,
    /// This member's advertised peer URLs.
    pub advertise_peer_urls: Vec<String>,
    /// `(name, peer URL)` pairs of the initial cluster.
    pub initial_cluster: Vec<(String, String)>,
    /// Cluster token.
    pub initial_cluster_token: String,
    /// Whether the cluster is being bootstrapped (`new`) or joined (`existing`).
    pub new_cluster: bool,
    /// Heartbeat interval (one Raft tick).
    pub tick: Duration,
    /// Election timeout in ticks.
    pub election_ticks: usize,
    /// `--snapshot-count`.
    pub snapshot_count: u64,
    /// `--experimental-snapshot-catchup-entries`.
    pub snapshot_catchup_entries: u64,
    /// `--quota-backend-bytes` (0: the 2 GiB default).
    pub quota_backend_bytes: i64,
    /// `--max-request-bytes`.
    pub max_request_bytes: usize,
    /// `--max-txn-ops`.
    pub max_txn_ops: usize,
    /// `--log-level`.
    pub log_level: String,
    /// `--experimental-watch-progress-notify-interval` (0: etcd's default, 10 minutes).
    pub watch_progress_notify_interval: Duration,
    /// `--auth-token-ttl`: how long an unused simple token stays valid.
    pub auth_token_ttl: Duration,
    /// `--bcrypt-cost`, within [`BCRYPT_COSTS`].
    pub bcrypt_cost: u32,
    /// Addresses of `--listen-metrics-urls` (HTTP endpoints only).
    pub listen_metrics_addrs: Vec<SocketAddr>,
    /// Those of `listen_metrics_addrs` given as `https://` URLs: served with `client_tls`.
    pub tls_metrics_addrs: Vec<SocketAddr>,
    /// `--auto-compaction-mode` and `--auto-compaction-retention` (none: disabled).
    pub auto_compaction: Option<crate::compactor::AutoCompaction>,
    /// How often the revision auto-compactor checks.
    pub auto_compaction_check_interval: Duration,
    /// `--log-outputs`: `stderr`, `stdout` or file paths (`default` is stderr).
    pub log_outputs: Vec<String>,
    /// `--log-format json`: one JSON object per line.
    pub log_json: bool,
}

impl Config {
    /// Parses the process arguments (etcd's single-dash long flags included).
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<Flags, clap::Error> {
        Flags::try_parse_from(args.into_iter().map(|a| normalize_flag(&a)))
    }

    /// Validates flags into a configuration.
    pub fn from_flags(flags: Flags) -> Result<Config, ConfigError> {
        let flags = match &flags.config_file {
            Some(path) => flags_from_file(path)?,
            None => flags,
        };
        if !["zap", "capnslog"].contains(&flags.logger.as_str()) {
            return Err(bad_value(
                "logger",
                &flags.logger,
                "expected 'zap' or 'capnslog'",
            ));
        }
        let log_json = match flags.log_format.as_str() {
            "json" => true,
            "console" => false,
            other => {
                return Err(bad_value(
                    "log-format",
                    other,
                    "only 'json' and 'console' are supported",
                ));
            }
        };
        let auto_compaction = crate::compactor::AutoCompaction::parse(
            &flags.auto_compaction_mode,
            &flags.auto_compaction_retention,
        )
        .map_err(|reason| {
            bad_value(
                "auto-compaction-retention",
                &flags.auto_compaction_retention,
                &reason,
            )
        })?;
        let auto_compaction_check_interval =
            parse_go_duration(&flags.experimental_auto_compaction_check_interval)
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    bad_value(
                        "experimental-auto-compaction-check-interval",
                        &flags.experimental_auto_compaction_check_interval,
                        "not a positive duration (e.g. 5m0s, 500ms)",
                    )
                })?;
        let (listen_metrics_addrs, tls_metrics_addrs) = if flags.listen_metrics_urls.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            (
                listen_addrs("listen-metrics-urls", &flags.listen_metrics_urls)?,
                https_addrs("listen-metrics-urls", &flags.listen_metrics_urls)?,
            )
        };
        if flags.heartbeat_interval == 0 {
            return Err(bad_value("heartbeat-interval", "0", "must be positive"));
        }
        if flags.election_timeout < 5 * flags.heartbeat_interval {
            return Err(bad_value(
                "election-timeout",
                &flags.election_timeout.to_string(),
                "should be at least 5 times --heartbeat-interval",
            ));
        }
        let new_cluster = match flags.initial_cluster_state.as_str() {
            "new" => true,
            "existing" => false,
            other => {
                return Err(bad_value(
                    "initial-cluster-state",
                    other,
                    "must be 'new' or 'existing'",
                ));
            }
        };
        let advertise_peer_urls = parse_urls(
            "initial-advertise-peer-urls",
            &flags.initial_advertise_peer_urls,
        )?;
        let initial_cluster = match &flags.initial_cluster {
            Some(list) => parse_initial_cluster(list)?,
            None => advertise_peer_urls
                .iter()
                .map(|u| (flags.name.clone(), u.clone()))
                .collect(),
        };
        if !initial_cluster.iter().any(|(name, _)| name == &flags.name) {
            return Err(bad_value(
                "initial-cluster",
                flags.initial_cluster.as_deref().unwrap_or_default(),
                &format!("does not name this member ({:?})", flags.name),
            ));
        }
        let auth_token_type = flags.auth_token.split(',').next().unwrap_or_default();
        if auth_token_type != "simple" {
            return Err(bad_value(
                "auth-token",
                &flags.auth_token,
                "cairn supports 'simple' tokens only",
            ));
        }
        let data_dir = flags
            .data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("{}.etcd", flags.name)));
        Ok(Config {
            name: flags.name.clone(),
            data_dir,
            listen_client_addrs: listen_addrs("listen-client-urls", &flags.listen_client_urls)?,
            tls_client_addrs: https_addrs("listen-client-urls", &flags.listen_client_urls)?,
            client_tls: TlsSettings::client(&flags)?,
            tls_peer_addrs: https_addrs("listen-peer-urls", &flags.listen_peer_urls)?,
            peer_tls: TlsSettings::peer(&flags)?,
            advertise_client_urls: parse_urls(
                "advertise-client-urls",
                &flags.advertise_client_urls,
            )?,
            listen_peer_addrs: listen_addrs("listen-peer-urls", &flags.listen_peer_urls)?,
            advertise_peer_urls,
            initial_cluster,
            initial_cluster_token: flags.initial_cluster_token.clone(),
            new_cluster,
            tick: Duration::from_millis(flags.heartbeat_interval),
            election_ticks: (flags.election_timeout / flags.heartbeat_interval) as usize,
            snapshot_count: flags.snapshot_count.max(1),
            snapshot_catchup_entries: flags.experimental_snapshot_catchup_entries,
            quota_backend_bytes: flags.quota_backend_bytes,
            max_request_bytes: flags.max_request_bytes as usize,
            max_txn_ops: flags.max_txn_ops as usize,
            log_level: flags.log_level.clone(),
            auth_token_ttl: Duration::from_secs(flags.auth_token_ttl),
            bcrypt_cost: bcrypt_cost(flags.bcrypt_cost),
            listen_metrics_addrs,
            tls_metrics_addrs,
            auto_compaction,
            auto_compaction_check_interval,
            log_outputs: flags
                .log_outputs
                .split(',')
                .map(str::trim)
                .filter(|o| !o.is_empty())
                .map(String::from)
                .collect(),
            log_json,
            watch_progress_notify_interval: parse_go_duration(
                &flags.experimental_watch_progress_notify_interval,
            )
            .ok_or_else(|| {
                bad_value(
                    "experimental-watch-progress-notify-interval",
                    &flags.experimental_watch_progress_notify_interval,
                    "not a duration (e.g. 10m0s, 500ms)",
                )
            })?,
        })
    }

    /// etcd's request timeout: 5 s plus two election timeouts.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(5) + self.tick * (2 * self.election_ticks as u32)
    }
}

/// etcd's `NewAuthStore`: a cost outside Go's bcrypt range falls back to the default.
fn bcrypt_cost(given: u32) -> u32 {
    if BCRYPT_COSTS.contains(&given) {
        return given;
    }
    tracing::warn!(
        given,
        default = DEFAULT_BCRYPT_COST,
        "use default bcrypt cost instead of the invalid given cost"
    );
    DEFAULT_BCRYPT_COST
}

/// The flags a `--config-file` gives: etcd's YAML keys are its flag names (`name`,
/// `data-dir`, `listen-client-urls`...), lists (`log-outputs`, `cipher-suites`) are joined
/// with commas, and `client-transport-security`/`peer-transport-security` hold the TLS
/// flags (`cert-file`...; `peer-` prefixed for peers). As etcd, keys cairn does not know
/// are ignored, and the command line is not consulted.
fn flags_from_file(path: &std::path::Path) -> Result<Flags, ConfigError> {
    use clap::CommandFactory;
    let shown = path.display().to_string();
    let file_error = |reason: String| ConfigError::BadValue {
        flag: "config-file",
        value: shown.clone(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
    let yaml: serde_yaml::Value =
        serde_yaml::from_str(&text).map_err(|e| file_error(e.to_string()))?;
    let mut pairs: Vec<(String, serde_yaml::Value)> = Vec::new();
    match yaml {
        serde_yaml::Value::Mapping(map) => {
            for (key, value) in map {
                let Some(key) = key.as_str().map(str::to_string) else {
                    return Err(file_error(format!("key {key:?} is not a string")));
                };
                let prefix = match key.as_str() {
                    "client-transport-security" => Some(""),
                    "peer-transport-security" => Some("peer-"),
                    _ => None,
                };
                match (prefix, value) {
                    (Some(prefix), serde_yaml::Value::Mapping(inner)) => {
                        for (k, v) in inner {
                            if let Some(k) = k.as_str() {
                                pairs.push((format!("{prefix}{k}"), v));
                            }
                        }
                    }
                    (_, value) => pairs.push((key, value)),
                }
            }
        }
        serde_yaml::Value::Null => {}
        _ => return Err(file_error("not a YAML mapping of etcd's keys".to_string())),
    }
    let command = Flags::command();
    let mut args = vec!["cairn".to_string()];
    for (key, value) in pairs {
        let known = command.get_arguments().any(|a| {
            a.get_long() == Some(key.as_str())
                && a.get_action().takes_values()
                && key != "config-file"
        });
        let text = match value {
            serde_yaml::Value::Null => continue,
            serde_yaml::Value::Bool(b) => b.to_string(),
            serde_yaml::Value::Number(n) => n.to_string(),
            serde_yaml::Value::String(s) => s,
            serde_yaml::Value::Sequence(items) => items
                .iter()
                .filter_map(|i| match i {
                    serde_yaml::Value::String(s) => Some(s.clone()),
                    serde_yaml::Value::Number(n) => Some(n.to_string()),
                    serde_yaml::Value::Bool(b) => Some(b.to_string()),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join(","),
            _ => continue,
        };
        if !known {
            tracing::debug!(%key, "ignoring a config file key cairn does not use");
            continue;
        }
        // Go's yaml gives "" for an empty string: keep the default.
        if text.is_empty() {
            continue;
        }
        args.push(format!("--{key}={text}"));
    }
    Flags::try_parse_from(args).map_err(|e| file_error(e.to_string().trim().to_string()))
}

/// Go's flag package accepts `-flag`; clap wants `--flag`.
fn normalize_flag(arg: &str) -> String {
    if arg.len() > 2 && arg.starts_with('-') && !arg.starts_with("--") {
        format!("-{arg}")
    } else {
        arg.to_string()
    }
}

fn bad_value(flag: &'static str, value: &str, reason: &str) -> ConfigError {
    ConfigError::BadValue {
        flag,
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

fn bad_url(flag: &'static str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::BadUrl {
        flag,
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// Parses a comma-separated list of http(s) URLs with a host and a port.
fn parse_urls(flag: &'static str, list: &str) -> Result<Vec<String>, ConfigError> {
    let mut urls = Vec::new();
    for raw in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let url = Url::parse(raw).map_err(|e| bad_url(flag, raw, e.to_string()))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(bad_url(
                flag,
                raw,
                format!("URL scheme must be http or https, got {:?}", url.scheme()),
            ));
        }
        if url.host_str().is_none() {
            return Err(bad_url(flag, raw, "URL has no host"));
        }
        if url.port().is_none() {
            return Err(bad_url(
                flag,
                raw,
                "URL address does not have the form \"host:port\"",
            ));
        }
        urls.push(raw.trim_end_matches('/').to_string());
    }
    if urls.is_empty() {
        return Err(bad_url(flag, list, "no URL given"));
    }
    Ok(urls)
}

/// The addresses of the `https://` URLs among `list`.
fn https_addrs(flag: &'static str, list: &str) -> Result<Vec<SocketAddr>, ConfigError> {
    let https: Vec<String> = parse_urls(flag, list)?
        .into_iter()
        .filter(|u| u.starts_with("https://"))
        .collect();
    if https.is_empty() {
        return Ok(Vec::new());
    }
    listen_addrs(flag, &https.join(","))
}

/// Resolves listen URLs to socket addresses (`localhost` to the loopback address).
fn listen_addrs(flag: &'static str, list: &str) -> Result<Vec<SocketAddr>, ConfigError> {
    let mut addrs = Vec::new();
    for raw in parse_urls(flag, list)? {
        let url = Url::parse(&raw).map_err(|e| bad_url(flag, &raw, e.to_string()))?;
        let host = url
            .host_str()
            .unwrap_or_default()
            .trim_matches(|c| c == '[' || c == ']');
        let port = url.port().unwrap_or_default();
        let host = if host == "localhost" {
            "127.0.0.1"
        } else {
            host
        };
        let resolved = (host, port)
            .to_socket_addrs()
            .map_err(|e| bad_url(flag, &raw, format!("cannot resolve host: {e}")))?
            .next()
            .ok_or_else(|| bad_url(flag, &raw, "host resolves to no address"))?;
        addrs.push(resolved);
    }
    Ok(addrs)
}

/// Parses a Go `time.Duration` string (`1h2m3.5s`, `100ms`, `0`); a negative duration is 0.
pub(crate) fn parse_go_duration(text: &str) -> Option<Duration> {
    let (negative, mut rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest == "0" {
        return Some(Duration::ZERO);
    }
    if rest.is_empty() {
        return None;
    }
    let mut seconds = 0f64;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !c.is_ascii_digit() && c != '.')?;
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds_per_unit = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        seconds += number * seconds_per_unit;
    }
    if negative {
        return Some(Duration::ZERO);
    }
    Duration::try_from_secs_f64(seconds).ok()
}

fn parse_initial_cluster(list: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let mut pairs = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, url) = item
            .split_once('=')
            .ok_or_else(|| bad_value("initial-cluster", item, "expected name=URL"))?;
        let url = parse_urls("initial-cluster", url)?.remove(0);
        pairs.push((name.to_string(), url));
    }
    if pairs.is_empty() {
        return Err(bad_value("initial-cluster", list, "no member given"));
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> Result<Config, String> {
        let argv = std::iter::once("cairn")
            .chain(args.iter().copied())
            .map(String::from);
        let flags = Config::from_args(argv).map_err(|e| e.to_string())?;
        Config::from_flags(flags).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_match_etcd() {
        let c = config(&[]).unwrap();
        assert_eq!(c.name, "default");
        assert_eq!(c.data_dir, PathBuf::from("default.etcd"));
        assert_eq!(
            c.listen_client_addrs,
            vec!["127.0.0.1:2379".parse().unwrap()]
        );
        assert_eq!(c.listen_peer_addrs, vec!["127.0.0.1:2380".parse().unwrap()]);
        assert_eq!(
            c.initial_cluster,
            vec![("default".to_string(), "http://localhost:2380".to_string())]
        );
        assert_eq!(c.election_ticks, 10);
        assert_eq!(c.max_txn_ops, 128);
        assert_eq!(c.max_request_bytes, 1_572_864);
    }

    #[test]
    fn single_dash_flags_are_accepted_like_go() {
        let c = config(&[
            "-name",
            "n1",
            "--data-dir=/tmp/x",
            "-initial-cluster",
            "n1=http://127.0.0.1:2380",
        ])
        .unwrap();
        assert_eq!(c.name, "n1");
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
    }

    #[test]
    fn watch_progress_notify_interval_takes_go_durations() {
        let flag = "--experimental-watch-progress-notify-interval";
        assert_eq!(
            config(&[]).unwrap().watch_progress_notify_interval,
            Duration::from_secs(600)
        );
        assert_eq!(
            config(&[flag, "1m30s"])
                .unwrap()
                .watch_progress_notify_interval,
            Duration::from_secs(90)
        );
        assert_eq!(
            config(&[flag, "250ms"])
                .unwrap()
                .watch_progress_notify_interval,
            Duration::from_millis(250)
        );
        assert_eq!(
            config(&[flag, "1.5h"])
                .unwrap()
                .watch_progress_notify_interval,
            Duration::from_secs(5400)
        );
        assert_eq!(
            config(&[flag, "0"]).unwrap().watch_progress_notify_interval,
            Duration::ZERO
        );
        assert!(
            config(&[flag, "10"])
                .unwrap_err()
                .contains("experimental-watch-progress-notify-interval")
        );
        assert!(config(&[flag, "5 s"]).is_err());
        assert!(config(&[flag, ""]).is_err());
    }

    #[test]
    fn config_file_uses_etcds_yaml_keys_and_ignores_the_command_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("etcd.yml");
        std::fs::write(
            &file,
            "name: n1\n\
             data-dir: /tmp/n1\n\
             wal-dir:\n\
             enable-v2: true\n\
             listen-client-urls: http://127.0.0.1:27101\n\
             initial-advertise-peer-urls: http://127.0.0.1:27102\n\
             initial-cluster: n1=http://127.0.0.1:27102\n\
             snapshot-count: 42\n\
             heartbeat-interval: 50\n\
             election-timeout: 500\n\
             log-outputs: [stdout]\n\
             auto-compaction-mode: revision\n\
             auto-compaction-retention: \"100\"\n\
             listen-metrics-urls: http://127.0.0.1:27103\n\
             client-transport-security:\n  client-cert-auth: true\n  cert-file: /c.crt\n  key-file: /c.key\n  trusted-ca-file: /ca.crt\n\
             peer-transport-security:\n  auto-tls: true\n",
        )
        .unwrap();
        let c = config(&["--config-file", file.to_str().unwrap(), "--name", "ignored"]).unwrap();
        assert_eq!(c.name, "n1");
        assert_eq!(c.data_dir, PathBuf::from("/tmp/n1"));
        assert_eq!(
            c.listen_client_addrs,
            vec!["127.0.0.1:27101".parse().unwrap()]
        );
        assert_eq!(c.snapshot_count, 42);
        assert_eq!((c.tick, c.election_ticks), (Duration::from_millis(50), 10));
        assert_eq!(c.log_outputs, ["stdout"]);
        assert_eq!(
            c.auto_compaction,
            Some(crate::compactor::AutoCompaction::Revision(100))
        );
        assert_eq!(
            c.listen_metrics_addrs,
            vec!["127.0.0.1:27103".parse().unwrap()]
        );
        let client_tls = c.client_tls.unwrap();
        assert!(client_tls.client_cert_auth);
        assert_eq!(
            client_tls.cert_key,
            Some((PathBuf::from("/c.crt"), PathBuf::from("/c.key")))
        );
        assert!(c.peer_tls.unwrap().auto);
    }

    #[test]
    fn unknown_flag_is_an_error() {
        assert!(config(&["--no-such-flag"]).is_err());
    }

    #[test]
    fn url_without_port_is_an_error() {
        let e = config(&["--listen-client-urls", "http://127.0.0.1"]).unwrap_err();
        assert!(e.contains("listen-client-urls"), "{e}");
    }

    #[test]
    fn bad_scheme_is_an_error() {
        let e = config(&["--listen-client-urls", "ftp://127.0.0.1:1"]).unwrap_err();
        assert!(e.contains("scheme"), "{e}");
    }

    #[test]
    fn initial_cluster_must_name_this_member() {
        let e = config(&[
            "--name",
            "x",
            "--initial-cluster",
            "y=http://127.0.0.1:2380",
        ])
        .unwrap_err();
        assert!(e.contains("does not name this member"), "{e}");
    }
}

/// A TLS version as etcd's `--tls-min-version`/`--tls-max-version` name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

/// TLS of one side (client or peer) of a member, from etcd's flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// Certificate and key files (PEM); `None` with `auto`: generated at start-up.
    pub cert_key: Option<(PathBuf, PathBuf)>,
    /// CA bundle (PEM) that connecting certificates must chain to.
    pub trusted_ca: Option<PathBuf>,
    /// Whether connecting parties must present a certificate signed by `trusted_ca`.
    pub client_cert_auth: bool,
    /// `--auto-tls`/`--peer-auto-tls`: a self-signed certificate made at start-up.
    pub auto: bool,
    /// `--peer-cert-allowed-cn`: the only common name peers may present.
    pub allowed_cn: Option<String>,
    /// `--cipher-suites`, as IANA names (`TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`).
    pub cipher_suites: Vec<String>,
    /// Lowest and highest TLS versions accepted.
    pub min_version: TlsVersion,
    /// See `min_version`.
    pub max_version: TlsVersion,
}

impl TlsSettings {
    /// Settings with nothing configured: a dialler trusting the system's defaults.
    pub fn default_client() -> TlsSettings {
        TlsSettings {
            cert_key: None,
            trusted_ca: None,
            client_cert_auth: false,
            auto: false,
            allowed_cn: None,
            cipher_suites: Vec::new(),
            min_version: TlsVersion::Tls12,
            max_version: TlsVersion::Tls13,
        }
    }

    fn client(flags: &Flags) -> Result<Option<TlsSettings>, ConfigError> {
        TlsSettings::from_parts(
            flags,
            ("cert-file", &flags.cert_file, "key-file", &flags.key_file),
            &flags.trusted_ca_file,
            flags.client_cert_auth,
            flags.auto_tls,
            "",
        )
    }

    fn peer(flags: &Flags) -> Result<Option<TlsSettings>, ConfigError> {
        TlsSettings::from_parts(
            flags,
            (
                "peer-cert-file",
                &flags.peer_cert_file,
                "peer-key-file",
                &flags.peer_key_file,
            ),
            &flags.peer_trusted_ca_file,
            flags.peer_client_cert_auth,
            flags.peer_auto_tls,
            &flags.peer_cert_allowed_cn,
        )
    }

    fn from_parts(
        flags: &Flags,
        (cert_flag, cert, key_flag, key): (&'static str, &str, &'static str, &str),
        trusted_ca: &str,
        client_cert_auth: bool,
        auto: bool,
        allowed_cn: &str,
    ) -> Result<Option<TlsSettings>, ConfigError> {
        let cert_key = match (cert.is_empty(), key.is_empty()) {
            (true, true) => None,
            (false, false) => Some((PathBuf::from(cert), PathBuf::from(key))),
            (false, true) => {
                return Err(bad_value(
                    key_flag,
                    key,
                    &format!("required with --{cert_flag}"),
                ));
            }
            (true, false) => {
                return Err(bad_value(
                    cert_flag,
                    cert,
                    &format!("required with --{key_flag}"),
                ));
            }
        };
        if cert_key.is_none() && !auto && trusted_ca.is_empty() && !client_cert_auth {
            return Ok(None);
        }
        let version = |flag: &'static str, value: &str, default: TlsVersion| match value {
            "" => Ok(default),
            "TLS1.2" => Ok(TlsVersion::Tls12),
            "TLS1.3" => Ok(TlsVersion::Tls13),
            "TLS1.0" | "TLS1.1" => Err(bad_value(
                flag,
                value,
                "TLS versions below 1.2 are not supported",
            )),
            _ => Err(bad_value(
                flag,
                value,
                "unexpected TLS version (TLS1.2 or TLS1.3)",
            )),
        };
        let min_version = version("tls-min-version", &flags.tls_min_version, TlsVersion::Tls12)?;
        let max_version = version("tls-max-version", &flags.tls_max_version, TlsVersion::Tls13)?;
        if max_version < min_version {
            return Err(bad_value(
                "tls-max-version",
                &flags.tls_max_version,
                "below --tls-min-version",
            ));
        }
        Ok(Some(TlsSettings {
            cert_key,
            trusted_ca: (!trusted_ca.is_empty()).then(|| PathBuf::from(trusted_ca)),
            client_cert_auth,
            auto,
            allowed_cn: (!allowed_cn.is_empty()).then(|| allowed_cn.to_string()),
            cipher_suites: flags
                .cipher_suites
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            min_version,
            max_version,
        }))
    }
}
