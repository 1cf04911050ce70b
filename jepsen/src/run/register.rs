//! The register workload: client processes doing linearizable reads, writes and
//! compare-and-sets on a few keys through `cairn_client`, recording each call's invocation
//! and completion in a [`Recorder`].
//!
//! Outcomes follow Jepsen: a read that errs is `fail` (it changed nothing); a write or CAS
//! that errs (timeout, lost connection, a server error) is `info` (it may yet apply), and
//! the process is then retired and replaced by a new process id, as Jepsen does. A CAS whose
//! compare failed is `fail`. Values are small integers as strings, so CAS succeeds often.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use cairn_client::pb::etcdserverpb::{
    Compare, PutRequest, RangeRequest, RequestOp, TxnRequest, compare, request_op,
};
use cairn_client::{Client, ConnectOptions};

use super::rng::Rng;
use crate::history::{
    Call, Clock, Completion, History, HistoryBuilder, HistoryError, Stamp, Value,
};

/// Prefix of the register keys; key `i` is `r/<i>`.
pub const KEY_PREFIX: &str = "r/";
/// Values drawn for writes and CAS.
const VALUES: u64 = 5;
/// How long dialling a member may take.
const DIAL_TIMEOUT: Duration = Duration::from_secs(1);

/// The register key `i`.
pub fn key(i: u64) -> String {
    format!("{KEY_PREFIX}{i}")
}

/// Records invocations and completions, stamped with the time since the run began, into one
/// history (taken under one lock, so times never go backwards).
#[derive(Clone)]
pub struct Recorder {
    start: Instant,
    inner: Arc<Mutex<(HistoryBuilder, Option<HistoryError>)>>,
}

impl Recorder {
    /// An empty history whose clock starts now.
    pub fn new(start: Instant) -> Self {
        Recorder {
            start,
            inner: Arc::new(Mutex::new((HistoryBuilder::new(Clock::Nanos), None))),
        }
    }

    fn lock(&self) -> MutexGuard<'_, (HistoryBuilder, Option<HistoryError>)> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now(&self) -> Stamp {
        Stamp::at(u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }

    fn invoke(&self, process: u64, call: Call) {
        let mut inner = self.lock();
        let at = self.now();
        if let Err(e) = inner.0.invoke(process, call, at) {
            inner.1.get_or_insert(e);
        }
    }

    fn complete(&self, process: u64, completion: Completion) {
        let mut inner = self.lock();
        let at = self.now();
        if let Err(e) = inner.0.complete(process, completion, at) {
            inner.1.get_or_insert(e);
        }
    }

    /// The history recorded (calls still outstanding are `info`), or the first recording
    /// error (a bug of the runner). Leaves the recorder empty.
    pub fn take(&self) -> Result<History, HistoryError> {
        let mut inner = self.lock();
        let builder = std::mem::replace(&mut inner.0, HistoryBuilder::new(Clock::Nanos));
        match inner.1.take() {
            Some(e) => Err(e),
            None => Ok(builder.finish()),
        }
    }
}

/// What the register clients share.
#[derive(Clone)]
pub struct Workload {
    /// Client endpoints, one per member.
    pub endpoints: Vec<String>,
    /// How many register keys.
    pub keys: u64,
    /// How many client processes run at once.
    pub concurrency: u64,
    /// Limit of one call.
    pub request_timeout: Duration,
    /// When to stop invoking.
    pub deadline: Instant,
    /// The seed of the run.
    pub seed: u64,
}

/// Runs register client `client` until the deadline.
pub async fn client(workload: Workload, client: u64, recorder: Recorder) {
    let mut rng = Rng::fork(workload.seed, 1000 + client);
    let mut process = client;
    let mut member = (client as usize) % workload.endpoints.len().max(1);
    let mut connection: Option<Client> = None;
    while Instant::now() < workload.deadline {
        let Some(conn) = connection.clone() else {
            connection = connect(&workload, member).await;
            if connection.is_none() {
                member = (member + 1) % workload.endpoints.len().max(1);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            continue;
        };
        let key = key(rng.below(workload.keys));
        let call = match rng.below(10) {
            0..4 => Call::read(Some(&key)),
            4..7 => Call::write(Some(&key), value(&mut rng)),
            _ => Call::cas(Some(&key), value(&mut rng), value(&mut rng)),
        };
        recorder.invoke(process, call.clone());
        let completion = perform(&conn, &call).await;
        let failed = completion.is_err();
        let completion = completion.unwrap_or_else(|info| info);
        let retire = completion.outcome == crate::history::Outcome::Info;
        recorder.complete(process, completion);
        if retire {
            process += workload.concurrency;
        }
        if failed {
            connection = None;
            member = (member + 1) % workload.endpoints.len().max(1);
        }
    }
}

fn value(rng: &mut Rng) -> Value {
    Value::str(rng.below(VALUES).to_string())
}

async fn connect(workload: &Workload, member: usize) -> Option<Client> {
    let endpoint = workload.endpoints.get(member)?.clone();
    let options = ConnectOptions {
        dial_timeout: Some(DIAL_TIMEOUT),
        request_timeout: Some(workload.request_timeout),
        tls: None,
    };
    Client::connect_with(&[endpoint], options).await.ok()
}

/// Performs `call`: `Ok` with its completion, or `Err` with the completion of a call that
/// erred (the connection is then abandoned).
async fn perform(client: &Client, call: &Call) -> Result<Completion, Completion> {
    match call {
        Call::Read { key } => {
            let request = RangeRequest {
                key: key.clone().unwrap_or_default().into_bytes(),
                ..Default::default()
            };
            match client.kv_range(request).await {
                Ok(response) => Ok(Completion::read_ok(
                    response.kvs.first().map_or(Value::Nil, |kv| {
                        Value::str(String::from_utf8_lossy(&kv.value))
                    }),
                )),
                Err(_) => Err(Completion::fail()),
            }
        }
        Call::Write { key, value } => {
            let request = PutRequest {
                key: key.clone().unwrap_or_default().into_bytes(),
                value: value.to_text().into_bytes(),
                ..Default::default()
            };
            match client.kv_put(request).await {
                Ok(_) => Ok(Completion::ok()),
                Err(_) => Err(Completion::info()),
            }
        }
        Call::Cas { key, expected, new } => {
            let key = key.clone().unwrap_or_default().into_bytes();
            let request = TxnRequest {
                compare: vec![Compare {
                    result: compare::CompareResult::Equal as i32,
                    target: compare::CompareTarget::Value as i32,
                    key: key.clone(),
                    target_union: Some(compare::TargetUnion::Value(
                        expected.to_text().into_bytes(),
                    )),
                    ..Default::default()
                }],
                success: vec![RequestOp {
                    request: Some(request_op::Request::RequestPut(PutRequest {
                        key,
                        value: new.to_text().into_bytes(),
                        ..Default::default()
                    })),
                }],
                failure: Vec::new(),
            };
            match client.kv_txn(request).await {
                Ok(response) if response.succeeded => Ok(Completion::ok()),
                Ok(_) => Ok(Completion::fail()),
                Err(_) => Err(Completion::info()),
            }
        }
        // Appends are not part of this workload.
        _ => Err(Completion::fail()),
    }
}
