//! The workloads: what simulated clients ask the cluster, and how each call is recorded.
//!
//! Register keys `r/0`..`r/4` are few, so clients contend on them: reads, blind writes and
//! CAS (a Txn comparing the value, or the version 0 for an absent key, then putting),
//! multi-key transactions and deletes all land on them and go into the jepsen history, one
//! register per key. Values are unique (`<client>.<seq>`), which gives the checker the most
//! power. Put-once keys `a/<client>/<seq>` are written exactly once each and checked at the
//! end: every acknowledged one must exist, no refused one may. Compactions only exercise
//! the servers (their outcome is not a register operation).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cairn_client::pb::etcdserverpb::{
    CompactionRequest, Compare, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp,
    ResponseHeader, TxnRequest, TxnResponse, compare, request_op, response_op,
};
use cairn_client::pb::mvccpb::KeyValue;
use cairn_client::{Client, ClientError};
use cairn_jepsen::{Call, Completion, Outcome, Value};
use madsim::rand::Rng as _;

use crate::client::Connection;
use crate::options::Workload;
use crate::recorder::{PROCESSES_PER_CLIENT, Recorder};

/// How many register keys the clients contend on.
pub const REGISTER_KEYS: usize = 5;
/// Start and end of the register key range (`r/` up to, not including, `r0`).
pub const REGISTER_RANGE: (&[u8], &[u8]) = (b"r/", b"r0");
/// Prefix of the put-once keys.
pub const PUT_ONCE_PREFIX: &str = "a/";
/// Longest pause of a client between two calls.
const THINK_MAX: Duration = Duration::from_millis(40);

/// The register key number `k`.
pub fn register_key(k: usize) -> String {
    format!("r/{k}")
}

/// Whether a call moved things forward, for the liveness phase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The cluster answered (a refused CAS or a compacted revision is an answer too).
    Answered,
    /// No answer: no connection, no leader, or an unknown outcome. Says why.
    Stalled(String),
}

/// How often each workload is drawn, relative to the others (0: not a call of these
/// clients; watches and leases have client processes of their own).
fn weight(workload: Workload) -> u32 {
    match workload {
        Workload::Kv => 12,
        Workload::Txn => 4,
        Workload::Delete => 2,
        Workload::Compact => 1,
        Workload::Watch | Workload::Lease => 0,
    }
}

/// One client process running the workloads.
pub struct SimClient {
    id: u64,
    conn: Connection,
    recorder: Recorder,
    workloads: Vec<Workload>,
    seq: u64,
    /// The value each register key was last seen to hold (the next CAS expects it).
    known: Vec<Value>,
    last_revision: i64,
}

impl SimClient {
    /// Client `id`, first connected to member `id % endpoints.len()`.
    pub fn new(
        id: u64,
        endpoints: Vec<String>,
        workloads: &[Workload],
        recorder: Recorder,
    ) -> Self {
        let preferred = id as usize % endpoints.len();
        SimClient {
            id,
            conn: Connection::new(endpoints, preferred),
            recorder,
            workloads: workloads
                .iter()
                .copied()
                .filter(|&w| weight(w) > 0)
                .collect(),
            seq: 0,
            known: vec![Value::Nil; REGISTER_KEYS],
            last_revision: 1,
        }
    }

    /// Runs calls until `stop` is set, then returns the client for the next phase.
    pub async fn run_until(mut self, stop: Arc<AtomicBool>) -> SimClient {
        while !stop.load(Ordering::Relaxed) {
            self.step().await;
            self.think().await;
        }
        self
    }

    /// Makes `calls` calls, each of which must be answered.
    pub async fn must_progress(&mut self, calls: usize) -> Result<(), String> {
        for done in 0..calls {
            if let Progress::Stalled(why) = self.step().await {
                return Err(format!(
                    "client {} got no answer after {done} of {calls} calls: {why}",
                    self.id
                ));
            }
            self.think().await;
        }
        Ok(())
    }

    /// Reads every register key linearizably, recorded like any other read.
    pub async fn read_all(&mut self) -> Progress {
        self.multi_read_range().await
    }

    /// One call of a workload drawn by the seed.
    pub async fn step(&mut self) -> Progress {
        if self.workloads.is_empty() {
            return Progress::Answered;
        }
        match self.pick_workload() {
            Workload::Kv => self.kv_call().await,
            Workload::Txn => self.txn_call().await,
            Workload::Delete => self.delete_call().await,
            Workload::Compact => self.compact().await,
            Workload::Watch | Workload::Lease => Progress::Answered,
        }
    }

    async fn think(&self) {
        let pause = madsim::rand::thread_rng().gen_range(Duration::ZERO..=THINK_MAX);
        madsim::time::sleep(pause).await;
    }

    fn pick_workload(&self) -> Workload {
        let total: u32 = self.workloads.iter().map(|&w| weight(w)).sum();
        let mut roll = madsim::rand::thread_rng().gen_range(0..total);
        for &workload in &self.workloads {
            if roll < weight(workload) {
                return workload;
            }
            roll -= weight(workload);
        }
        self.workloads[0]
    }

    async fn kv_call(&mut self) -> Progress {
        let key = random_key();
        match madsim::rand::thread_rng().gen_range(0..10) {
            0..=3 => self.read(key).await,
            4..=6 => self.write(key).await,
            7..=8 => self.cas(key).await,
            _ => self.put_once().await,
        }
    }

    async fn txn_call(&mut self) -> Progress {
        match madsim::rand::thread_rng().gen_range(0..4) {
            0 => self.multi_read_range().await,
            1 => self.multi_read_txn().await,
            _ => self.multi_write_txn().await,
        }
    }

    async fn delete_call(&mut self) -> Progress {
        if madsim::rand::thread_rng().gen_bool(0.75) {
            self.delete(random_key()).await
        } else {
            self.delete_all().await
        }
    }

    fn process(&self, key: usize) -> u64 {
        self.id * PROCESSES_PER_CLIENT + key as u64
    }

    fn next_value(&mut self) -> String {
        self.seq += 1;
        format!("{}.{}", self.id, self.seq)
    }

    /// Notes the revision of a linearizable answer (it must never go backwards).
    fn observe(&mut self, header: Option<&ResponseHeader>, what: &str) {
        if let Some(header) = header {
            self.recorder
                .observe_revision(self.id, header.revision, what);
            self.last_revision = self.last_revision.max(header.revision);
        }
    }

    /// Invokes `calls`, sends the request, and on an error completes every call with the
    /// error's outcome. On success the caller completes the calls.
    async fn recorded<T, F, Fut>(&mut self, calls: Vec<(u64, Call)>, send: F) -> Result<T, Progress>
    where
        F: FnOnce(Client) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let Some(client) = self.conn.get().await else {
            return Err(Progress::Stalled("no connection".to_string()));
        };
        let processes: Vec<u64> = calls.iter().map(|(p, _)| *p).collect();
        self.recorder.invoke(calls);
        match send(client).await {
            Ok(response) => Ok(response),
            Err(error) => {
                let outcome = self.conn.outcome_of(&error);
                let completion = match outcome {
                    Outcome::Fail => Completion::fail(),
                    _ => Completion::info(),
                };
                self.recorder
                    .complete(processes.iter().map(|&p| (p, completion.clone())).collect());
                Err(progress_after(&error, outcome))
            }
        }
    }

    /// Completes `processes` with the same completion.
    fn complete_all(&self, processes: &[u64], completion: &Completion) {
        self.recorder
            .complete(processes.iter().map(|&p| (p, completion.clone())).collect());
    }

    async fn read(&mut self, key: usize) -> Progress {
        let name = register_key(key);
        let request = RangeRequest {
            key: name.clone().into_bytes(),
            ..Default::default()
        };
        let calls = vec![(self.process(key), Call::read(Some(&name)))];
        let response = match self
            .recorded(calls, |c| async move { c.kv_range(request).await })
            .await
        {
            Ok(response) => response,
            Err(progress) => return progress,
        };
        let value = value_of(response.kvs.first());
        self.known[key] = value.clone();
        self.recorder
            .complete(vec![(self.process(key), Completion::read_ok(value))]);
        self.observe(response.header.as_ref(), &format!("read {name}"));
        Progress::Answered
    }

    async fn write(&mut self, key: usize) -> Progress {
        let name = register_key(key);
        let value = self.next_value();
        let request = put_request(&name, &value);
        let calls = vec![(
            self.process(key),
            Call::write(Some(&name), Value::str(&value)),
        )];
        let response = match self
            .recorded(calls, |c| async move { c.kv_put(request).await })
            .await
        {
            Ok(response) => response,
            Err(progress) => return progress,
        };
        self.known[key] = Value::str(value);
        self.complete_all(&[self.process(key)], &Completion::ok());
        self.observe(response.header.as_ref(), &format!("write {name}"));
        Progress::Answered
    }

    async fn cas(&mut self, key: usize) -> Progress {
        let name = register_key(key);
        let new = self.next_value();
        let expected = self.known[key].clone();
        let request = TxnRequest {
            compare: vec![compare_value(&name, &expected)],
            success: vec![put_op(&name, &new)],
            failure: vec![range_op(&name)],
        };
        let call = Call::cas(Some(&name), expected, Value::str(&new));
        let calls = vec![(self.process(key), call)];
        let response = match self
            .recorded(calls, |c| async move { c.kv_txn(request).await })
            .await
        {
            Ok(response) => response,
            Err(progress) => return progress,
        };
        self.finish_conditional(&[(key, new)], &response, &format!("cas {name}"));
        Progress::Answered
    }

    async fn put_once(&mut self) -> Progress {
        let key = format!("{PUT_ONCE_PREFIX}{}/{:06}", self.id, self.seq);
        let value = self.next_value();
        let Some(client) = self.conn.get().await else {
            return Progress::Stalled("no connection".to_string());
        };
        match client.kv_put(put_request(&key, &value)).await {
            Ok(response) => {
                self.recorder.put_once(key.clone(), Outcome::Ok);
                self.observe(response.header.as_ref(), &format!("put {key}"));
                Progress::Answered
            }
            Err(error) => {
                let outcome = self.conn.outcome_of(&error);
                self.recorder.put_once(key, outcome);
                progress_after(&error, outcome)
            }
        }
    }

    /// One Range over every register key: a read of each, at one revision.
    async fn multi_read_range(&mut self) -> Progress {
        let request = RangeRequest {
            key: REGISTER_RANGE.0.to_vec(),
            range_end: REGISTER_RANGE.1.to_vec(),
            ..Default::default()
        };
        let calls = self.read_calls();
        let response = match self
            .recorded(calls, |c| async move { c.kv_range(request).await })
            .await
        {
            Ok(response) => response,
            Err(progress) => return progress,
        };
        self.complete_reads(&response.kvs);
        self.observe(response.header.as_ref(), "range r/");
        Progress::Answered
    }

    /// One read-only Txn with a Range per register key.
    async fn multi_read_txn(&mut self) -> Progress {
        let request = TxnRequest {
            success: (0..REGISTER_KEYS)
                .map(|k| range_op(&register_key(k)))
                .collect(),
            ..Default::default()
        };
        let calls = self.read_calls();
        let response = match self
            .recorded(calls, |c| async move { c.kv_txn(request).await })
            .await
        {
            Ok(response) => response,
            Err(progress) => return progress,
        };
        let kvs: Vec<KeyValue> = range_results(&response).into_iter().flatten().collect();
        self.complete_reads(&kvs);
        self.observe(response.header.as_ref(), "read-only txn");
        Progress::Answered
    }

    fn read_calls(&self) -> Vec<(u64, Call)> {
        (0..REGISTER_KEYS)
            .map(|k| (self.process(k), Call::read(Some(&register_key(k)))))
            .collect()
    }

    /// Completes the read of every register key from `kvs` (absent keys read as nil).
    fn complete_reads(&mut self, kvs: &[KeyValue]) {
        let mut completions = Vec::with_capacity(REGISTER_KEYS);
        for k in 0..REGISTER_KEYS {
            let name = register_key(k);
            let value = value_of(kvs.iter().find(|kv| kv.key == name.as_bytes()));
            self.known[k] = value.clone();
            completions.push((self.process(k), Completion::read_ok(value)));
        }
        self.recorder.complete(completions);
    }

    /// A Txn over 2 or 3 keys: some compared to their known value (a CAS each), all put.
    async fn multi_write_txn(&mut self) -> Progress {
        let keys = random_keys(madsim::rand::thread_rng().gen_range(2..=3));
        let mut request = TxnRequest::default();
        let mut calls = Vec::new();
        let mut writes = Vec::new();
        for &key in &keys {
            let name = register_key(key);
            let new = self.next_value();
            let call = if madsim::rand::thread_rng().gen_bool(0.5) {
                let expected = self.known[key].clone();
                request.compare.push(compare_value(&name, &expected));
                Call::cas(Some(&name), expected, Value::str(&new))
            } else {
                Call::write(Some(&name), Value::str(&new))
            };
            request.success.push(put_op(&name, &new));
            request.failure.push(range_op(&name));
            calls.push((self.process(key), call));
            writes.push((key, new));
        }
        let response = match self
            .recorded(calls, |c| async move { c.kv_txn(request).await })
            .await
        {
            Ok(response) => response,
            Err(progress) => return progress,
        };
        self.finish_conditional(&writes, &response, "multi-key txn");
        Progress::Answered
    }

    /// Completes the calls of a conditional Txn that put `writes`: all took effect if it
    /// succeeded, none did otherwise (its failure branch read the keys' values).
    fn finish_conditional(
        &mut self,
        writes: &[(usize, String)],
        response: &TxnResponse,
        what: &str,
    ) {
        let processes: Vec<u64> = writes.iter().map(|(k, _)| self.process(*k)).collect();
        if response.succeeded {
            for (key, value) in writes {
                self.known[*key] = Value::str(value);
            }
            self.complete_all(&processes, &Completion::ok());
        } else {
            let kvs: Vec<KeyValue> = range_results(response).into_iter().flatten().collect();
            for (key, _) in writes {
                let name = register_key(*key);
                self.known[*key] = value_of(kvs.iter().find(|kv| kv.key == name.as_bytes()));
            }
            self.complete_all(&processes, &Completion::fail());
        }
        self.observe(response.header.as_ref(), what);
    }

    async fn delete(&mut self, key: usize) -> Progress {
        let name = register_key(key);
        let request = DeleteRangeRequest {
            key: name.clone().into_bytes(),
            ..Default::default()
        };
        let calls = vec![(self.process(key), Call::write(Some(&name), Value::Nil))];
        let response = match self
            .recorded(calls, |c| async move { c.kv_delete_range(request).await })
            .await
        {
            Ok(response) => response,
            Err(progress) => return progress,
        };
        self.known[key] = Value::Nil;
        self.complete_all(&[self.process(key)], &Completion::ok());
        self.observe(response.header.as_ref(), &format!("delete {name}"));
        Progress::Answered
    }

    /// Deletes the whole register range: a write of nil to every key.
    async fn delete_all(&mut self) -> Progress {
        let request = DeleteRangeRequest {
            key: REGISTER_RANGE.0.to_vec(),
            range_end: REGISTER_RANGE.1.to_vec(),
            ..Default::default()
        };
        let calls: Vec<(u64, Call)> = (0..REGISTER_KEYS)
            .map(|k| {
                (
                    self.process(k),
                    Call::write(Some(&register_key(k)), Value::Nil),
                )
            })
            .collect();
        let processes: Vec<u64> = calls.iter().map(|(p, _)| *p).collect();
        let response = match self
            .recorded(calls, |c| async move { c.kv_delete_range(request).await })
            .await
        {
            Ok(response) => response,
            Err(progress) => return progress,
        };
        self.known = vec![Value::Nil; REGISTER_KEYS];
        self.complete_all(&processes, &Completion::ok());
        self.observe(response.header.as_ref(), "delete r/");
        Progress::Answered
    }

    /// Compacts a revision a little behind the newest this client saw.
    async fn compact(&mut self) -> Progress {
        let behind = madsim::rand::thread_rng().gen_range(0..20);
        let revision = (self.last_revision - behind).max(1);
        let Some(client) = self.conn.get().await else {
            return Progress::Stalled("no connection".to_string());
        };
        let request = CompactionRequest {
            revision,
            physical: false,
        };
        match client.kv_compact(request).await {
            Ok(response) => {
                self.recorder.count(Outcome::Ok);
                self.observe(response.header.as_ref(), &format!("compact {revision}"));
                Progress::Answered
            }
            Err(error) => {
                let outcome = self.conn.outcome_of(&error);
                self.recorder.count(outcome);
                progress_after(&error, outcome)
            }
        }
    }
}

/// Whether an error still counts as an answer (a definite refusal other than "no leader").
fn progress_after(error: &ClientError, outcome: Outcome) -> Progress {
    if outcome == Outcome::Fail && error.code() != cairn_client::Code::Unavailable {
        Progress::Answered
    } else {
        Progress::Stalled(error.to_string())
    }
}

fn random_key() -> usize {
    madsim::rand::thread_rng().gen_range(0..REGISTER_KEYS)
}

/// `count` distinct register keys, in ascending order.
fn random_keys(count: usize) -> Vec<usize> {
    let mut keys: Vec<usize> = (0..REGISTER_KEYS).collect();
    let mut rng = madsim::rand::thread_rng();
    for i in 0..count {
        let j = rng.gen_range(i..keys.len());
        keys.swap(i, j);
    }
    keys.truncate(count);
    keys.sort_unstable();
    keys
}

fn value_of(kv: Option<&KeyValue>) -> Value {
    kv.map_or(Value::Nil, |kv| {
        Value::str(String::from_utf8_lossy(&kv.value).into_owned())
    })
}

fn put_request(key: &str, value: &str) -> PutRequest {
    PutRequest {
        key: key.as_bytes().to_vec(),
        value: value.as_bytes().to_vec(),
        ..Default::default()
    }
}

fn put_op(key: &str, value: &str) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestPut(put_request(key, value))),
    }
}

fn range_op(key: &str) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestRange(RangeRequest {
            key: key.as_bytes().to_vec(),
            ..Default::default()
        })),
    }
}

/// `key` holds `expected`: equal value, or version 0 (absent) for nil.
fn compare_value(key: &str, expected: &Value) -> Compare {
    let (target, union) = match expected {
        Value::Nil => (
            compare::CompareTarget::Version,
            compare::TargetUnion::Version(0),
        ),
        other => (
            compare::CompareTarget::Value,
            compare::TargetUnion::Value(other.to_text().into_bytes()),
        ),
    };
    Compare {
        result: compare::CompareResult::Equal as i32,
        target: target as i32,
        key: key.as_bytes().to_vec(),
        range_end: Vec::new(),
        target_union: Some(union),
    }
}

/// The key-values of each Range in a Txn's responses.
fn range_results(response: &TxnResponse) -> Vec<Vec<KeyValue>> {
    response
        .responses
        .iter()
        .filter_map(|op| match &op.response {
            Some(response_op::Response::ResponseRange(range)) => Some(range.kvs.clone()),
            _ => None,
        })
        .collect()
}
