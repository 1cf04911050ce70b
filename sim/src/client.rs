//! One simulated client process: a `cairn_client::Client` connection to one member over the
//! simulated network, re-dialled (to a member chosen by the seed) after any error that may
//! mean a broken connection, and the reading of errors as Jepsen outcomes.
//!
//! An error is a definite failure (`fail`: the request had no effect) only when the request
//! provably never reached the log: it was refused before proposing (`no leader`, bad
//! argument) or applied as an error (compacted, future revision). Anything else (timeouts,
//! a member that stopped or went away mid-call) is `info`: the write may still take effect.

use std::time::Duration;

use cairn_client::{Client, ClientError, Code, ConnectOptions};
use cairn_jepsen::Outcome;
use madsim::rand::Rng as _;

/// How long dialling a member may take.
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(1);
/// How long one call may take: above the server's own request timeout (7 s with the
/// default flags), so the server's answer usually comes first.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The message of etcd's "no leader" error: the request was never proposed.
const NO_LEADER: &str = "etcdserver: no leader";

/// A client process and its current connection.
pub struct Connection {
    endpoints: Vec<String>,
    preferred: usize,
    client: Option<Client>,
}

impl Connection {
    /// A process that first dials `endpoints[preferred]`.
    pub fn new(endpoints: Vec<String>, preferred: usize) -> Self {
        Connection {
            endpoints,
            preferred,
            client: None,
        }
    }

    /// The connection, dialled if there is none; `None` if the member did not answer.
    pub async fn get(&mut self) -> Option<Client> {
        if let Some(client) = &self.client {
            return Some(client.clone());
        }
        let endpoint = self.endpoints[self.preferred % self.endpoints.len()].clone();
        let options = ConnectOptions {
            dial_timeout: Some(DIAL_TIMEOUT),
            request_timeout: Some(REQUEST_TIMEOUT),
            tls: None,
        };
        match Client::connect_with(&[endpoint], options).await {
            Ok(client) => {
                self.client = Some(client.clone());
                Some(client)
            }
            Err(_) => {
                self.pick_another_member();
                None
            }
        }
    }

    /// Reads `error` as an outcome, and drops the connection when it may be broken.
    pub fn outcome_of(&mut self, error: &ClientError) -> Outcome {
        let outcome = write_outcome(error);
        if outcome == Outcome::Info {
            self.client = None;
            self.pick_another_member();
        }
        outcome
    }

    /// Drops the connection (it failed, or the member cannot serve the request): a member
    /// chosen by the seed is dialled next time.
    pub fn drop_connection(&mut self) {
        self.client = None;
        self.pick_another_member();
    }

    /// Dials a member chosen by the seed next time.
    fn pick_another_member(&mut self) {
        self.preferred = madsim::rand::thread_rng().gen_range(0..self.endpoints.len());
    }
}

/// What a failed write tells: `Fail` if it certainly had no effect, `Info` otherwise.
pub fn write_outcome(error: &ClientError) -> Outcome {
    match error.code() {
        Code::InvalidArgument
        | Code::OutOfRange
        | Code::NotFound
        | Code::FailedPrecondition
        | Code::AlreadyExists
        | Code::PermissionDenied => Outcome::Fail,
        Code::Unavailable if error.rpc_message() == Some(NO_LEADER) => Outcome::Fail,
        _ => Outcome::Info,
    }
}
