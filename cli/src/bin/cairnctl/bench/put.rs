//! `bench put` (etcd's `benchmark put`): `--total` puts of one random `--val-size` value
//! to keys of `--key-size` bytes drawn from `--key-space-size` key numbers, at random or
//! in turn with `--sequential-keys`.

use std::sync::Arc;

use cairn_client::pb::etcdserverpb::PutRequest;

use super::keys::{self, Mix};
use super::pool::Pool;
use super::runner::{self, MakeCall, Plan};
use super::{BenchOptions, Outcome, SEED, non_negative};
use crate::exit::CliError;
use crate::flags::FlagValues;

/// The keys and values a put scenario writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySpace {
    /// `--key-size` in bytes.
    pub key_size: usize,
    /// `--key-space-size`: distinct key numbers.
    pub key_space_size: u64,
    /// `--sequential-keys`.
    pub sequential: bool,
}

impl KeySpace {
    /// `--key-size`, `--key-space-size` and (when the scenario has it) `--sequential-keys`.
    pub fn from_flags(values: &FlagValues, sequential: bool) -> Result<KeySpace, CliError> {
        let (key_size, space) = (values.int("key-size"), values.int("key-space-size"));
        keys::check_key_space(key_size, space).map_err(CliError::error)?;
        Ok(KeySpace {
            key_size: usize::try_from(key_size).unwrap_or(0),
            key_space_size: u64::try_from(space).unwrap_or(1),
            sequential,
        })
    }

    /// The key of request `n`.
    pub fn key(&self, n: u64) -> Vec<u8> {
        let number = keys::key_number(n, self.key_space_size, self.sequential, SEED);
        keys::key(number, self.key_size).unwrap_or_default()
    }
}

/// Runs `bench put`.
pub async fn run(options: &BenchOptions, values: &FlagValues) -> Result<Outcome, CliError> {
    let space = KeySpace::from_flags(values, values.bool("sequential-keys"))?;
    let value_size = usize::try_from(non_negative(values, "val-size")?).unwrap_or(0);
    let value = Arc::new(Mix::new(SEED).bytes(value_size));
    let plan = Plan {
        total: non_negative(values, "total")?,
        rate: non_negative(values, "rate")?,
        clients: options.clients,
    };
    let pool = Pool::connect(options).await?;
    let make_call: MakeCall = Arc::new(move |client, _worker, n| {
        let request = PutRequest {
            key: space.key(n),
            value: value.to_vec(),
            ..Default::default()
        };
        Box::pin(async move { client.kv_put(request).await.map(|_| ()) })
    });
    let report = runner::closed_loop("put", &pool, plan, make_call).await;
    Ok(Outcome::single(report))
}
