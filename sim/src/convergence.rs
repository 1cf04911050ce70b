//! The end of the liveness phase: every member agrees on one leader, applies the same log
//! prefix, and holds the same data.
//!
//! Once every member reports the same applied index and revision, each member's HashKV
//! (etcd's hash of the whole key history up to a revision, computed by the member's own state
//! machine) must be the same; and each member is asked over the network (serializable reads,
//! so each answers from its own state) for every key at that revision and at an older one,
//! and the answers, errors included, must be identical (which names the first differing key
//! when the hashes differ). The put-once keys are checked against the same answer: every
//! acknowledged one is there, no refused one is. And no client request may be in two
//! entries of any member's log (it would be applied twice).

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::time::Duration;

use cairn_core::api::cairnpb::InternalRequest;
use cairn_core::storage::mem::MemEngine;
use cairn_core::storage::{Engine as _, Order, Space};
use prost::Message as _;
use protobuf::Message as _;
use raft::eraftpb::{Entry, EntryType};

use cairn_client::pb::etcdserverpb::RangeRequest;
use cairn_client::pb::mvccpb::KeyValue;
use cairn_client::{Client, ConnectOptions};
use cairn_jepsen::Outcome;

use crate::cluster::SimCluster;
use crate::workload::PUT_ONCE_PREFIX;

/// How often the members' status is polled.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// What every member agreed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agreement {
    /// The applied Raft index.
    pub applied_index: u64,
    /// The store revision.
    pub revision: i64,
    /// The compacted revision.
    pub compacted: i64,
}

/// Waits until every member is running and names the same leader.
pub async fn wait_for_leader(cluster: &SimCluster) {
    loop {
        if agreed_leader(cluster).is_some() {
            return;
        }
        madsim::time::sleep(POLL_INTERVAL).await;
    }
}

fn agreed_leader(cluster: &SimCluster) -> Option<u64> {
    let leader = cluster.leader()?;
    let leader_id = cluster.node_handle(leader)?.identity().member_id;
    (0..cluster.size())
        .all(|i| {
            cluster
                .node_handle(i)
                .is_some_and(|h| h.raft_status().leader == leader_id)
        })
        .then_some(leader_id)
}

/// Waits until every member has applied everything committed and all agree.
pub async fn wait_for_agreement(cluster: &SimCluster) -> Agreement {
    loop {
        if let Some(agreement) = agreement(cluster) {
            return agreement;
        }
        madsim::time::sleep(POLL_INTERVAL).await;
    }
}

fn agreement(cluster: &SimCluster) -> Option<Agreement> {
    let mut seen = Vec::with_capacity(cluster.size());
    for i in 0..cluster.size() {
        let handle = cluster.node_handle(i)?;
        let status = handle.raft_status();
        if status.applied_index != status.commit_index {
            return None;
        }
        let state = handle.state_machine();
        seen.push(Agreement {
            applied_index: status.applied_index,
            revision: state.current_revision(),
            compacted: state.compacted_revision(),
        });
    }
    // The compacted revisions are not waited for: members that applied the same log must
    // have compacted the same, and the hashes compared next include it.
    let first = *seen.iter().max_by_key(|a| a.compacted)?;
    seen.iter()
        .all(|a| (a.applied_index, a.revision) == (first.applied_index, first.revision))
        .then_some(first)
}

/// Every member's HashKV at the agreed revision must be the same.
pub fn compare_hashes(cluster: &SimCluster, agreement: Agreement) -> Result<(), String> {
    let mut hashes = Vec::with_capacity(cluster.size());
    for i in 0..cluster.size() {
        let handle = cluster
            .node_handle(i)
            .ok_or_else(|| format!("n{} stopped before its HashKV was taken", i + 1))?;
        // Revision 0 is the current one, which every member agreed is `agreement.revision`
        // (an explicit revision equal to the compacted one is refused, as etcd does).
        let hash = handle.state_machine().hash_kv(0).map_err(|e| {
            format!(
                "HashKV of n{} at revision {}: {e}",
                i + 1,
                agreement.revision
            )
        })?;
        hashes.push(hash);
    }
    match hashes.iter().position(|h| *h != hashes[0]) {
        None => Ok(()),
        Some(i) => Err(format!(
            "HashKV at revision {}: n1 has {:?}, n{} has {:?} (hash, compacted, revision)",
            agreement.revision,
            hashes[0],
            i + 1,
            hashes[i]
        )),
    }
}

/// One member's answer to a full read: the key-values, or the error's text.
type Answer = Result<Vec<KeyValue>, String>;

/// Reads every key on every member at `revision`, serializably.
async fn read_everything(endpoints: &[String], revision: i64) -> Result<Vec<Answer>, String> {
    let mut answers = Vec::with_capacity(endpoints.len());
    for endpoint in endpoints {
        let options = ConnectOptions {
            dial_timeout: Some(Duration::from_secs(1)),
            request_timeout: Some(Duration::from_secs(10)),
            tls: None,
        };
        let client = Client::connect_with(std::slice::from_ref(endpoint), options)
            .await
            .map_err(|e| format!("cannot connect to {endpoint} for the final read: {e}"))?;
        let request = RangeRequest {
            key: vec![0],
            range_end: vec![0],
            revision,
            serializable: true,
            ..Default::default()
        };
        let answer = match client.kv_range(request).await {
            Ok(response) => Ok(response.kvs),
            Err(e) => Err(e.to_string()),
        };
        answers.push(answer);
    }
    Ok(answers)
}

/// Checks that every member holds the same data at the agreed revision and at an older
/// one; returns the data at the agreed revision.
pub async fn compare_members(
    endpoints: &[String],
    agreement: Agreement,
) -> Result<Vec<KeyValue>, String> {
    let older = (agreement.compacted.max(1) + agreement.revision) / 2;
    let mut newest = Vec::new();
    for revision in [agreement.revision, older] {
        let answers = read_everything(endpoints, revision).await?;
        if let Some(diff) = first_difference(&answers) {
            return Err(format!("members disagree at revision {revision}: {diff}"));
        }
        if revision == agreement.revision {
            newest = match answers.into_iter().next() {
                Some(Ok(kvs)) => kvs,
                Some(Err(e)) => return Err(format!("reading revision {revision}: {e}")),
                None => Vec::new(),
            };
        }
    }
    Ok(newest)
}

/// The first way in which a member's answer differs from the first member's.
fn first_difference(answers: &[Answer]) -> Option<String> {
    let first = answers.first()?;
    for (i, answer) in answers.iter().enumerate().skip(1) {
        if answer == first {
            continue;
        }
        return Some(match (first, answer) {
            (Ok(a), Ok(b)) => describe_kv_difference(a, b, i),
            (a, b) => format!(
                "n1 answered {:?}, n{} answered {:?}",
                brief(a),
                i + 1,
                brief(b)
            ),
        });
    }
    None
}

fn brief(answer: &Answer) -> String {
    match answer {
        Ok(kvs) => format!("{} keys", kvs.len()),
        Err(e) => e.clone(),
    }
}

fn describe_kv_difference(a: &[KeyValue], b: &[KeyValue], member: usize) -> String {
    let by_key = |kvs: &[KeyValue]| -> BTreeMap<Vec<u8>, KeyValue> {
        kvs.iter().map(|kv| (kv.key.clone(), kv.clone())).collect()
    };
    let (a, b) = (by_key(a), by_key(b));
    let keys: std::collections::BTreeSet<&Vec<u8>> = a.keys().chain(b.keys()).collect();
    for key in keys {
        if a.get(key) != b.get(key) {
            return format!(
                "key {:?}: n1 has {}, n{} has {}",
                String::from_utf8_lossy(key),
                describe(a.get(key)),
                member + 1,
                describe(b.get(key))
            );
        }
    }
    "same keys, different order".to_string()
}

fn describe(kv: Option<&KeyValue>) -> String {
    match kv {
        None => "nothing".to_string(),
        Some(kv) => format!(
            "{:?} (create {}, mod {}, version {})",
            String::from_utf8_lossy(&kv.value),
            kv.create_revision,
            kv.mod_revision,
            kv.version
        ),
    }
}

/// Every acknowledged put-once key must be in `kvs`; no refused one may be.
pub fn check_put_once(put_once: &BTreeMap<String, Outcome>, kvs: &[KeyValue]) -> Vec<String> {
    let present: std::collections::BTreeSet<&[u8]> = kvs
        .iter()
        .map(|kv| kv.key.as_slice())
        .filter(|k| k.starts_with(PUT_ONCE_PREFIX.as_bytes()))
        .collect();
    let mut breaches = Vec::new();
    for (key, outcome) in put_once {
        let there = present.contains(key.as_bytes());
        match (outcome, there) {
            (Outcome::Ok, false) => {
                breaches.push(format!("acknowledged write of {key} is missing"))
            }
            (Outcome::Fail, true) => breaches.push(format!("refused write of {key} took effect")),
            _ => {}
        }
    }
    breaches
}

/// One line per client request that two entries of a member's log carry.
pub fn requests_logged_twice(cluster: &SimCluster) -> Vec<String> {
    let mut found = Vec::new();
    for member in 0..cluster.size() {
        for (id, indexes) in repeated_requests(&cluster.engine(member)) {
            found.push(format!(
                "request {id:x} is in entries {indexes:?} of n{}'s log",
                member + 1
            ));
        }
    }
    found
}

/// Request ids carried by more than one normal entry of the log in `engine`.
fn repeated_requests(engine: &MemEngine) -> Vec<(u64, Vec<u64>)> {
    let mut entries: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    let mut visit = |_: &[u8], bytes: &[u8]| {
        if let Some((id, index)) = request_of(bytes) {
            entries.entry(id).or_default().push(index);
        }
        ControlFlow::Continue(())
    };
    // A scan of the mem engine cannot fail.
    let _ = engine.scan(Space::RaftLog, &[], None, Order::Ascending, &mut visit);
    entries.into_iter().filter(|(_, e)| e.len() > 1).collect()
}

/// The client request id and the index of an encoded log entry, if it carries one.
fn request_of(bytes: &[u8]) -> Option<(u64, u64)> {
    let entry = Entry::parse_from_bytes(bytes).ok()?;
    if entry.get_entry_type() != EntryType::EntryNormal || entry.data.is_empty() {
        return None;
    }
    let request = InternalRequest::decode(&entry.data[..]).ok()?;
    (request.id != 0).then_some((request.id, entry.index))
}
