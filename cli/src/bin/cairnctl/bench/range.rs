//! `bench range KEY [END]` (etcd's `benchmark range`): `--total` reads of one key or range,
//! linearizable (`--consistency l`, through the leader's read index) or serializable
//! (`s`, from the connected member's own state).

use std::sync::Arc;

use cairn_client::pb::etcdserverpb::RangeRequest;

use super::pool::Pool;
use super::runner::{self, MakeCall, Plan};
use super::{BenchOptions, Outcome, non_negative};
use crate::exit::CliError;
use crate::flags::FlagValues;
use crate::go_strconv;

/// Runs `bench range`.
pub async fn run(
    options: &BenchOptions,
    values: &FlagValues,
    args: &[String],
) -> Result<Outcome, CliError> {
    let request = request(args, values.str("consistency"))?;
    let preamble = match request.serializable {
        true => "bench with serializable range",
        false => "bench with linearizable range",
    };
    let plan = Plan {
        total: non_negative(values, "total")?,
        rate: non_negative(values, "rate")?,
        clients: options.clients,
    };
    let pool = Pool::connect(options).await?;
    let make_call: MakeCall = Arc::new(move |client, _worker, _n| {
        let request = request.clone();
        Box::pin(async move { client.kv_range(request).await.map(|_| ()) })
    });
    let report = runner::closed_loop("range", &pool, plan, make_call).await;
    Ok(Outcome::Measured {
        preamble: Some(preamble.to_string()),
        reports: vec![(None, report)],
    })
}

/// The Range request every client sends.
pub fn request(args: &[String], consistency: &str) -> Result<RangeRequest, CliError> {
    let (key, end) = match args {
        [key] => (key, None),
        [key, end] => (key, Some(end)),
        _ => {
            return Err(CliError::bad_args(
                "bench range needs a key and an optional end of range: bench range key [end-range]",
            ));
        }
    };
    let serializable = match consistency {
        "l" => false,
        "s" => true,
        other => {
            return Err(CliError::bad_feature(format!(
                "unknown consistency flag {}",
                go_strconv::quote(other)
            )));
        }
    };
    Ok(RangeRequest {
        key: key.as_bytes().to_vec(),
        range_end: end.map(|e| e.as_bytes().to_vec()).unwrap_or_default(),
        serializable,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn range_reads_one_key_or_a_range_with_the_chosen_consistency() {
        let r = request(&args(&["foo"]), "l").unwrap();
        assert_eq!(
            (r.key.as_slice(), r.range_end.is_empty(), r.serializable),
            (&b"foo"[..], true, false)
        );
        let r = request(&args(&["a", "z"]), "s").unwrap();
        assert_eq!((r.range_end.as_slice(), r.serializable), (&b"z"[..], true));
    }

    #[test]
    fn wrong_arguments_and_consistency_are_refused() {
        assert_eq!(request(&[], "l").unwrap_err().code, crate::exit::BAD_ARGS);
        assert_eq!(
            request(&args(&["a", "b", "c"]), "l").unwrap_err().code,
            crate::exit::BAD_ARGS
        );
        assert_eq!(
            request(&args(&["a"]), "x").unwrap_err(),
            CliError::bad_feature("unknown consistency flag \"x\"")
        );
    }
}
