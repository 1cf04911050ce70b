//! `bench txn-put` (etcd's `benchmark txn-put`): `--total` transactions without compares,
//! each of `--txn-ops` puts; put `j` of transaction `i` writes key number
//! `(i * txn-ops + j) % key-space-size`, as etcd's tool does.

use std::sync::Arc;

use cairn_client::pb::etcdserverpb::{PutRequest, RequestOp, TxnRequest, request_op};

use super::keys::Mix;
use super::pool::Pool;
use super::put::KeySpace;
use super::runner::{self, MakeCall, Plan};
use super::{BenchOptions, Outcome, SEED, non_negative, positive};
use crate::exit::CliError;
use crate::flags::FlagValues;

/// Runs `bench txn-put`.
pub async fn run(options: &BenchOptions, values: &FlagValues) -> Result<Outcome, CliError> {
    let space = KeySpace::from_flags(values, true)?;
    let ops = u64::try_from(positive(values, "txn-ops")?).unwrap_or(1);
    let value_size = usize::try_from(non_negative(values, "val-size")?).unwrap_or(0);
    let value = Arc::new(Mix::new(SEED).bytes(value_size));
    let plan = Plan {
        total: non_negative(values, "total")?,
        rate: non_negative(values, "rate")?,
        clients: options.clients,
    };
    let pool = Pool::connect(options).await?;
    let make_call: MakeCall = Arc::new(move |client, _worker, n| {
        let request = transaction(&space, &value, ops, n);
        Box::pin(async move { client.kv_txn(request).await.map(|_| ()) })
    });
    let report = runner::closed_loop("txn-put", &pool, plan, make_call).await;
    Ok(Outcome::single(report))
}

/// Transaction `n`: `ops` unconditional puts of `value`.
pub fn transaction(space: &KeySpace, value: &[u8], ops: u64, n: u64) -> TxnRequest {
    let success = (0..ops)
        .map(|j| RequestOp {
            request: Some(request_op::Request::RequestPut(PutRequest {
                key: space.key(n.wrapping_mul(ops).wrapping_add(j)),
                value: value.to_vec(),
                ..Default::default()
            })),
        })
        .collect();
    TxnRequest {
        success,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transaction_puts_consecutive_key_numbers() {
        let space = KeySpace {
            key_size: 2,
            key_space_size: 5,
            sequential: true,
        };
        let txn = transaction(&space, b"v", 3, 1);
        assert!(txn.compare.is_empty() && txn.failure.is_empty());
        let keys: Vec<Vec<u8>> = txn
            .success
            .iter()
            .filter_map(|op| match &op.request {
                Some(request_op::Request::RequestPut(p)) => Some(p.key.clone()),
                _ => None,
            })
            .collect();
        // Key numbers 3, 4, 0 (5 % 5), zigzag-varint encoded and padded to 2 bytes.
        assert_eq!(keys, [vec![6, 0], vec![8, 0], vec![0, 0]]);
    }
}
