//! The global options every command inherits, filled from the command line and then from
//! `ETCDCTL_*` environment variables as etcdctl does (`pkg/flags.SetPflagsFromEnv`): a
//! variable sets a flag that was not given; a variable for a flag that *was* given is a
//! fatal conflict; an `ETCDCTL_` variable that names no flag draws a warning.

use crate::console::Console;
use crate::exit::{self, CliError};
use crate::flags::{FlagDef, FlagValues};
use crate::go_duration::{self, GoDuration};
use crate::go_log::{self, Level};

/// The prefix of etcdctl's environment variables.
const ENV_PREFIX: &str = "ETCDCTL_";

/// The options a client needs, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Globals {
    /// `--endpoints`, trimmed.
    pub endpoints: Vec<String>,
    /// `-w/--write-out`.
    pub write_out: String,
    /// `--hex`.
    pub hex: bool,
    /// `--dial-timeout`.
    pub dial_timeout: GoDuration,
    /// `--command-timeout`.
    pub command_timeout: GoDuration,
    /// `--cacert`, `--cert`, `--key`: `Some` when any is given.
    pub tls: Option<cairn_client::TlsOptions>,
    /// `--user` (`name` or `name:password`; empty: no authentication).
    pub user: String,
    /// `--password`.
    pub password: String,
}

impl Globals {
    /// The resolved options. `--discovery-srv` is left to [`crate::discovery::apply`],
    /// which needs the network.
    pub fn from_flags(values: &FlagValues) -> Result<Globals, CliError> {
        Ok(Globals {
            endpoints: values
                .list("endpoints")
                .iter()
                .map(|e| e.trim().to_string())
                .collect(),
            write_out: values.str("write-out").to_string(),
            hex: values.bool("hex"),
            dial_timeout: values.duration("dial-timeout"),
            command_timeout: values.duration("command-timeout"),
            tls: tls_options(values),
            user: values.str("user").to_string(),
            password: values.str("password").to_string(),
        })
    }

    /// How to dial the endpoints.
    pub fn connect_options(&self) -> cairn_client::ConnectOptions {
        cairn_client::ConnectOptions {
            dial_timeout: self.dial_timeout(),
            request_timeout: None,
            tls: self.tls.clone(),
        }
    }

    /// `--command-timeout` as a std duration.
    pub fn command_timeout(&self) -> std::time::Duration {
        go_duration::to_std(self.command_timeout)
    }

    /// `--dial-timeout` as a std duration; `None` when zero (no limit, as in clientv3).
    pub fn dial_timeout(&self) -> Option<std::time::Duration> {
        (self.dial_timeout > 0).then(|| go_duration::to_std(self.dial_timeout))
    }
}

/// The TLS settings, if the connection is secure: as etcdctl, when a TLS file is given or
/// `--insecure-transport=false`; `--insecure-skip-tls-verify` counts only then.
fn tls_options(values: &FlagValues) -> Option<cairn_client::TlsOptions> {
    let path = |name: &str| {
        let value = values.str(name);
        (!value.is_empty()).then(|| std::path::PathBuf::from(value))
    };
    let options = cairn_client::TlsOptions {
        ca_file: path("cacert"),
        cert_file: path("cert"),
        key_file: path("key"),
        skip_verify: values.bool("insecure-skip-tls-verify"),
        server_name: None,
    };
    let files_given =
        options.ca_file.is_some() || options.cert_file.is_some() || options.key_file.is_some();
    (files_given || !values.bool("insecure-transport")).then_some(options)
}

/// etcdctl's `SetPflagsFromEnv("ETCDCTL", inherited)` followed by its environment check.
/// `env` is the process environment in order.
pub fn apply_env(
    values: &mut FlagValues,
    inherited: &[FlagDef],
    env: &[(String, String)],
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    let mut used = Vec::new();
    let mut shadowed = Vec::new();
    for def in inherited {
        let key = env_key(def.name);
        if values.changed(def.name) {
            shadowed.push(key);
            continue;
        }
        let Some((_, value)) = env.iter().find(|(k, v)| *k == key && !v.is_empty()) else {
            continue;
        };
        // etcdctl ignores a value that does not parse; the flag keeps its default.
        let _ignored = values.set(def.name, value);
        used.push(key);
    }
    verify_env(env, &used, &shadowed, console)
}

/// `ETCDCTL_` + the flag name in upper case with `-` as `_`.
fn env_key(flag: &str) -> String {
    format!("{ENV_PREFIX}{}", flag.to_uppercase().replace('-', "_"))
}

fn verify_env(
    env: &[(String, String)],
    used: &[String],
    shadowed: &[String],
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    for (key, value) in env {
        if used.contains(key) {
            continue;
        }
        if shadowed.contains(key) {
            let message = format!(
                "conflicting environment variable {} is shadowed by corresponding command-line flag \
                 (either unset environment variable or disable flag)",
                crate::go_strconv::quote(key)
            );
            console.err(&go_log::capnslog_line(Level::Critical, &message));
            return Err(CliError::silent(exit::ERROR));
        }
        if key.starts_with(ENV_PREFIX) {
            let message = format!("unrecognized environment variable {key}={value}");
            console.err(&go_log::capnslog_line(Level::Warning, &message));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::GLOBAL_FLAGS;
    use crate::flags;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn run(argv: &[&str], vars: &[(&str, &str)]) -> (Result<FlagValues, CliError>, String) {
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        let mut values = flags::parse(&GLOBAL_FLAGS, &argv)
            .map(|p| p.values)
            .unwrap_or_default();
        let (mut out, mut err, mut input) = (Vec::new(), Vec::new(), &b""[..]);
        let mut console = Console::new(&mut out, &mut err, &mut input);
        let result =
            apply_env(&mut values, &GLOBAL_FLAGS, &env(vars), &mut console).map(|()| values);
        (result, String::from_utf8_lossy(&err).into_owned())
    }

    #[test]
    fn environment_fills_flags_not_given() {
        let (values, err) = run(
            &[],
            &[
                ("ETCDCTL_ENDPOINTS", "a:1,b:2"),
                ("ETCDCTL_WRITE_OUT", "json"),
            ],
        );
        let values = values.unwrap();
        assert_eq!(values.list("endpoints"), ["a:1", "b:2"]);
        assert_eq!(values.str("write-out"), "json");
        assert_eq!(err, "");
    }

    #[test]
    fn unknown_variables_draw_a_warning() {
        let (values, err) = run(&[], &[("ETCDCTL_LIMIT", "1"), ("HOME", "/")]);
        assert!(values.is_ok());
        assert!(
            err.ends_with(" W | pkg/flags: unrecognized environment variable ETCDCTL_LIMIT=1\n"),
            "{err}"
        );
    }

    #[test]
    fn a_variable_shadowed_by_a_flag_is_fatal() {
        let (values, err) = run(&["--endpoints", "x:1"], &[("ETCDCTL_ENDPOINTS", "y:1")]);
        assert_eq!(values.unwrap_err(), CliError::silent(exit::ERROR));
        assert!(err.ends_with(
            " C | pkg/flags: conflicting environment variable \"ETCDCTL_ENDPOINTS\" is shadowed by corresponding command-line flag (either unset environment variable or disable flag)\n"
        ));
    }

    #[test]
    fn tls_flags_select_tls() {
        let parse = |args: &[&str]| {
            let argv: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            flags::parse(&GLOBAL_FLAGS, &argv).unwrap().values
        };
        let globals = Globals::from_flags(&parse(&["--cacert", "ca.pem"])).unwrap();
        assert_eq!(
            globals.tls.and_then(|t| t.ca_file),
            Some(std::path::PathBuf::from("ca.pem"))
        );
        assert_eq!(Globals::from_flags(&parse(&[])).unwrap().tls, None);
    }
}
