//! `put KEY [VALUE]`: a Put request built as etcdctl's `getPutOp` builds it; without a
//! VALUE argument the value is all of stdin (unless `--ignore-value`), as etcdctl reads it.

use std::io::Read;

use cairn_client::pb::etcdserverpb::PutRequest;

use crate::console::Console;
use crate::dispatch::Invocation;
use crate::exit::CliError;
use crate::flags::FlagValues;
use crate::go_strconv;
use crate::session::{Env, Session};

const NEEDS_ARGS: &str = "put command needs 1 argument and input from stdin or 2 arguments";

/// The Put request for `args` and `flags`; `stdin` supplies a missing value (`None` when
/// there is no stdin left to read, as inside `txn`).
pub fn request(
    args: &[String],
    flags: &FlagValues,
    stdin: Option<&mut dyn Read>,
) -> Result<PutRequest, CliError> {
    let Some(key) = args.first() else {
        return Err(CliError::bad_args(NEEDS_ARGS));
    };
    let ignore_value = flags.bool("ignore-value");
    if ignore_value && args.len() > 1 {
        return Err(CliError::bad_args(
            "put command needs only 1 argument when 'ignore-value' is set",
        ));
    }
    let value = match (ignore_value, args.get(1)) {
        (true, _) => Vec::new(),
        (false, Some(v)) => v.as_bytes().to_vec(),
        (false, None) => read_value(stdin).ok_or_else(|| CliError::bad_args(NEEDS_ARGS))?,
    };
    let lease = go_strconv::parse_int(flags.str("lease"), 16)
        .map_err(|e| CliError::bad_args(format!("bad lease ID ({e}), expecting ID in Hex")))?;
    Ok(PutRequest {
        key: key.as_bytes().to_vec(),
        value,
        lease,
        prev_kv: flags.bool("prev-kv"),
        ignore_value,
        ignore_lease: flags.bool("ignore-lease"),
    })
}

/// All of stdin, if it holds anything (etcdctl's `argOrStdin`).
fn read_value(stdin: Option<&mut dyn Read>) -> Option<Vec<u8>> {
    let mut value = Vec::new();
    stdin?.read_to_end(&mut value).ok()?;
    (!value.is_empty()).then_some(value)
}

/// Runs `put`.
pub async fn run(
    invocation: &mut Invocation,
    env: &Env,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    let request = request(&invocation.args, &invocation.values, Some(console.input()))?;
    let session = Session::open(invocation, env, console).await?;
    let response = session
        .call(console, session.client().kv_put(request))
        .await?;
    session.printer().put(&response, console)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::PUT_FLAGS;
    use crate::exit;
    use crate::flags;

    fn build(line: &str, stdin: &[u8]) -> Result<PutRequest, CliError> {
        let argv: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        let parsed = flags::parse(&PUT_FLAGS, &argv).expect("flags parse");
        let mut input = stdin;
        request(&parsed.args, &parsed.values, Some(&mut input))
    }

    #[test]
    fn value_comes_from_stdin_when_not_given() {
        assert_eq!(build("k", b"from stdin\n").unwrap().value, b"from stdin\n");
        assert_eq!(build("k v", b"ignored").unwrap().value, b"v");
        assert_eq!(build("k", b"").unwrap_err(), CliError::bad_args(NEEDS_ARGS));
    }

    #[test]
    fn lease_is_hexadecimal() {
        assert_eq!(build("k v --lease 1f", b"").unwrap().lease, 31);
        assert_eq!(
            build("k v --lease zz", b"").unwrap_err(),
            CliError::bad_args(
                r#"bad lease ID (strconv.ParseInt: parsing "zz": invalid syntax), expecting ID in Hex"#
            )
        );
    }

    #[test]
    fn ignore_value_takes_no_value() {
        let r = build("k --ignore-value --ignore-lease --prev-kv", b"unused").unwrap();
        assert!(r.ignore_value && r.ignore_lease && r.prev_kv && r.value.is_empty());
        assert_eq!(
            build("k v --ignore-value", b"").unwrap_err().code,
            exit::BAD_ARGS
        );
    }
}
