//! `get KEY [RANGE_END]`: a Range request built as etcdctl's `getGetOp` builds it (prefix,
//! from-key, limit, revision, sort, consistency, keys-only, and etcd 3.5's count-only and
//! revision filters), printed in the chosen format.

use cairn_client::pb::etcdserverpb::RangeRequest;
use cairn_client::pb::etcdserverpb::range_request::{SortOrder, SortTarget};

use super::range_end;
use crate::console::Console;
use crate::dispatch::Invocation;
use crate::exit::CliError;
use crate::flags::FlagValues;
use crate::go_strconv;
use crate::output::Format;
use crate::session::{Env, Session};

/// The Range request for `args` and `flags`, with etcdctl's checks and messages.
pub fn request(args: &[String], flags: &FlagValues) -> Result<RangeRequest, CliError> {
    let Some(key) = args.first() else {
        return Err(CliError::bad_args(
            "get command needs one argument as key and an optional argument as range_end",
        ));
    };
    let (prefix, from_key) = (flags.bool("prefix"), flags.bool("from-key"));
    if prefix && from_key {
        return Err(CliError::bad_args(
            "`--prefix` and `--from-key` cannot be set at the same time, choose one",
        ));
    }
    if flags.bool("keys-only") && flags.bool("count-only") {
        return Err(CliError::bad_args(
            "`--keys-only` and `--count-only` cannot be set at the same time, choose one",
        ));
    }
    let serializable = consistency(flags.str("consistency"))?;
    let mut request = RangeRequest {
        key: key.as_bytes().to_vec(),
        serializable,
        ..Default::default()
    };
    if let Some(end) = args.get(1) {
        if prefix || from_key {
            return Err(CliError::bad_args(
                "too many arguments, only accept one argument when `--prefix` or `--from-key` is set",
            ));
        }
        request.range_end = end.as_bytes().to_vec();
    }
    request.limit = flags.int("limit");
    request.revision = flags.int("rev").max(0);
    set_sort(&mut request, flags.str("order"), flags.str("sort-by"))?;
    set_range(&mut request, prefix, from_key);
    request.keys_only = flags.bool("keys-only");
    request.count_only = flags.bool("count-only");
    request.min_mod_revision = flags.int("min-mod-rev").max(0);
    request.max_mod_revision = flags.int("max-mod-rev").max(0);
    request.min_create_revision = flags.int("min-create-rev").max(0);
    request.max_create_revision = flags.int("max-create-rev").max(0);
    Ok(request)
}

/// `--consistency`: `s` is serializable, `l` linearizable.
fn consistency(value: &str) -> Result<bool, CliError> {
    match value {
        "s" => Ok(true),
        "l" => Ok(false),
        other => Err(CliError::bad_feature(format!(
            "unknown consistency flag {}",
            go_strconv::quote(other)
        ))),
    }
}

/// `--order` and `--sort-by`, as clientv3's `WithSort` (ascending by key is the server's
/// natural order, so it is sent as no sort at all).
fn set_sort(request: &mut RangeRequest, order: &str, target: &str) -> Result<(), CliError> {
    let mut sort_order = match order.to_uppercase().as_str() {
        "ASCEND" => SortOrder::Ascend,
        "DESCEND" => SortOrder::Descend,
        "" => SortOrder::None,
        _ => return Err(CliError::bad_feature(format!("bad sort order {order}"))),
    };
    let sort_target = match target.to_uppercase().as_str() {
        "CREATE" => SortTarget::Create,
        "KEY" | "" => SortTarget::Key,
        "MODIFY" => SortTarget::Mod,
        "VALUE" => SortTarget::Value,
        "VERSION" => SortTarget::Version,
        _ => return Err(CliError::bad_feature(format!("bad sort target {target}"))),
    };
    if sort_target == SortTarget::Key && sort_order == SortOrder::Ascend {
        sort_order = SortOrder::None;
    }
    request.sort_order = sort_order as i32;
    request.sort_target = sort_target as i32;
    Ok(())
}

fn set_range(request: &mut RangeRequest, prefix: bool, from_key: bool) {
    let key = std::mem::take(&mut request.key);
    let (key, end) = match (prefix, from_key) {
        (true, _) => range_end::with_prefix(key),
        (_, true) => range_end::with_from_key(key),
        _ => (key, std::mem::take(&mut request.range_end)),
    };
    request.key = key;
    request.range_end = end;
}

/// Runs `get`.
pub async fn run(
    invocation: &mut Invocation,
    env: &Env,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    let request = request(&invocation.args, &invocation.values)?;
    let session = Session::open(invocation, env, console).await?;
    let response = session
        .call_repeatable(console, || session.client().kv_range(request.clone()))
        .await?;
    let printer = session.printer();
    if invocation.values.bool("count-only") && printer.format != Format::Fields {
        return Err(CliError::bad_args(
            "--count-only is only for `--write-out=fields`",
        ));
    }
    let value_only = invocation.values.bool("print-value-only");
    if value_only && printer.format != Format::Simple {
        return Err(CliError::bad_args(
            "print-value-only is only for `--write-out=simple`",
        ));
    }
    printer.get(&response, value_only, console)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::GET_FLAGS;
    use crate::exit;
    use crate::flags;

    fn build(line: &str) -> Result<RangeRequest, CliError> {
        let argv: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        let parsed = flags::parse(&GET_FLAGS, &argv).expect("flags parse");
        request(&parsed.args, &parsed.values)
    }

    #[test]
    fn prefix_sets_the_range_end() {
        let r = build("foo --prefix").unwrap();
        assert_eq!((r.key, r.range_end), (b"foo".to_vec(), b"fop".to_vec()));
    }

    #[test]
    fn from_key_on_empty_key_reads_everything() {
        assert!(
            build("--from-key --limit 2").is_err(),
            "a key argument is required, even if empty"
        );
        let argv = vec![String::new(), "--from-key".to_string()];
        let parsed = flags::parse(&GET_FLAGS, &argv).unwrap();
        let r = request(&parsed.args, &parsed.values).unwrap();
        assert_eq!((r.key, r.range_end), (vec![0], vec![0]));
    }

    #[test]
    fn sort_by_key_ascending_is_sent_as_no_sort() {
        let r = build("a --sort-by=KEY --order=ascend").unwrap();
        assert_eq!(
            (r.sort_order, r.sort_target),
            (SortOrder::None as i32, SortTarget::Key as i32)
        );
        let r = build("a --sort-by=value --order=descend").unwrap();
        assert_eq!(
            (r.sort_order, r.sort_target),
            (SortOrder::Descend as i32, SortTarget::Value as i32)
        );
    }

    #[test]
    fn checks_read_like_etcdctl() {
        assert_eq!(build("").unwrap_err().code, exit::BAD_ARGS);
        assert_eq!(
            build("a --prefix --from-key").unwrap_err().code,
            exit::BAD_ARGS
        );
        assert_eq!(build("a b --prefix").unwrap_err().code, exit::BAD_ARGS);
        assert_eq!(
            build("a --consistency x").unwrap_err(),
            CliError::bad_feature("unknown consistency flag \"x\"")
        );
        assert_eq!(
            build("a --order up").unwrap_err(),
            CliError::bad_feature("bad sort order up")
        );
        assert_eq!(
            build("a --sort-by size").unwrap_err(),
            CliError::bad_feature("bad sort target size")
        );
        assert_eq!(
            build("a --keys-only --count-only").unwrap_err().code,
            exit::BAD_ARGS
        );
    }

    #[test]
    fn revision_filters_and_serializable_reach_the_request() {
        let r = build("a --rev 5 --consistency s --min-mod-rev 2 --max-create-rev 9 --count-only")
            .unwrap();
        assert_eq!((r.revision, r.serializable, r.count_only), (5, true, true));
        assert_eq!((r.min_mod_revision, r.max_create_revision), (2, 9));
    }
}
