//! `compaction REV [--physical]`: discards history at or below a revision and prints
//! `compacted revision REV` whatever the output format, as etcdctl does.

use cairn_client::pb::etcdserverpb::CompactionRequest;

use crate::console::Console;
use crate::dispatch::Invocation;
use crate::exit::CliError;
use crate::go_strconv;
use crate::session::{Env, Session};

/// The request for `args` and `--physical`, checked as etcdctl checks it.
pub fn request(args: &[String], physical: bool) -> Result<CompactionRequest, CliError> {
    let [revision] = args else {
        return Err(CliError::bad_args("compaction command needs 1 argument"));
    };
    let revision =
        go_strconv::parse_int(revision, 10).map_err(|e| CliError::error(e.to_string()))?;
    Ok(CompactionRequest { revision, physical })
}

/// Runs `compaction`.
pub async fn run(
    invocation: &mut Invocation,
    env: &Env,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    let request = request(&invocation.args, invocation.values.bool("physical"))?;
    let revision = request.revision;
    let session = Session::open(invocation, env, console).await?;
    session
        .call(console, session.client().kv_compact(request))
        .await?;
    console.out(&format!("compacted revision {revision}\n"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit;

    #[test]
    fn needs_exactly_one_decimal_revision() {
        assert_eq!(request(&[], false).unwrap_err().code, exit::BAD_ARGS);
        let e = request(&["abc".into()], false).unwrap_err();
        assert_eq!(
            e,
            CliError::error(r#"strconv.ParseInt: parsing "abc": invalid syntax"#)
        );
        assert_eq!(
            request(&["7".into()], true).unwrap(),
            CompactionRequest {
                revision: 7,
                physical: true
            }
        );
    }
}
