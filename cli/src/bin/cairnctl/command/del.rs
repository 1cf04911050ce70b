//! `del KEY [RANGE_END]`: a DeleteRange request built as etcdctl's `getDelOp` builds it.

use cairn_client::pb::etcdserverpb::DeleteRangeRequest;

use super::range_end;
use crate::console::Console;
use crate::dispatch::Invocation;
use crate::exit::CliError;
use crate::flags::FlagValues;
use crate::session::{Env, Session};

/// The DeleteRange request for `args` and `flags`, with etcdctl's checks and messages.
pub fn request(args: &[String], flags: &FlagValues) -> Result<DeleteRangeRequest, CliError> {
    if args.is_empty() || args.len() > 2 {
        return Err(CliError::bad_args(
            "del command needs one argument as key and an optional argument as range_end",
        ));
    }
    let (prefix, from_key) = (flags.bool("prefix"), flags.bool("from-key"));
    if prefix && from_key {
        return Err(CliError::bad_args(
            "`--prefix` and `--from-key` cannot be set at the same time, choose one",
        ));
    }
    if args.len() > 1 && (prefix || from_key) {
        return Err(CliError::bad_args(
            "too many arguments, only accept one argument when `--prefix` or `--from-key` is set",
        ));
    }
    let key = args[0].as_bytes().to_vec();
    let (key, range_end) = match (prefix, from_key) {
        (true, _) => range_end::with_prefix(key),
        (_, true) => range_end::with_from_key(key),
        _ => (
            key,
            args.get(1)
                .map(|e| e.as_bytes().to_vec())
                .unwrap_or_default(),
        ),
    };
    Ok(DeleteRangeRequest {
        key,
        range_end,
        prev_kv: flags.bool("prev-kv"),
    })
}

/// Runs `del`.
pub async fn run(
    invocation: &mut Invocation,
    env: &Env,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    let request = request(&invocation.args, &invocation.values)?;
    let session = Session::open(invocation, env, console).await?;
    let response = session
        .call(console, session.client().kv_delete_range(request))
        .await?;
    session.printer().del(&response, console)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::DEL_FLAGS;
    use crate::exit;
    use crate::flags;

    fn build(line: &str) -> Result<DeleteRangeRequest, CliError> {
        let argv: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        let parsed = flags::parse(&DEL_FLAGS, &argv).expect("flags parse");
        request(&parsed.args, &parsed.values)
    }

    #[test]
    fn prefix_and_explicit_ranges() {
        assert_eq!(
            build("p --prefix --prev-kv").unwrap(),
            DeleteRangeRequest {
                key: b"p".to_vec(),
                range_end: b"q".to_vec(),
                prev_kv: true
            }
        );
        assert_eq!(build("a c").unwrap().range_end, b"c");
    }

    #[test]
    fn argument_count_is_checked() {
        assert_eq!(build("").unwrap_err().code, exit::BAD_ARGS);
        assert_eq!(build("a b c").unwrap_err().code, exit::BAD_ARGS);
        assert_eq!(build("a b --from-key").unwrap_err().code, exit::BAD_ARGS);
    }
}
