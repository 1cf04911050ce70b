//! After the faults: waiting until every member holds the same data, and reading back the
//! committed history the watch checker judges the watchers against.
//!
//! The committed history is rebuilt through the KV read path, not the watch path under
//! test: the key space is read at every revision `1..=R` (`Range` with `revision`), and
//! consecutive states are compared. A key whose `mod_revision` is `r` was put at `r`; a key
//! present at `r - 1` and absent at `r` was deleted at `r`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cairn_client::pb::etcdserverpb::RangeRequest;
use cairn_client::{Client, ConnectOptions};

use crate::watch::client::key_value_of;
use crate::watch::{Commit, Event, EventType, KeyValue, Revision};

/// Parallel readers rebuilding the committed history.
const READERS: i64 = 8;

fn options() -> ConnectOptions {
    ConnectOptions {
        dial_timeout: Some(Duration::from_secs(1)),
        request_timeout: Some(Duration::from_secs(3)),
        tls: None,
    }
}

/// What one member reports: its revision, applied index and `HashKV` at that revision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct MemberState {
    revision: Revision,
    applied: u64,
    hash: u32,
}

async fn member_state(endpoint: &str) -> Result<MemberState, String> {
    let client = Client::connect_with(&[endpoint.to_string()], options())
        .await
        .map_err(|e| format!("{endpoint}: {e}"))?;
    let status = client
        .maintenance_status(cairn_client::pb::etcdserverpb::StatusRequest {})
        .await
        .map_err(|e| format!("{endpoint}: status: {e}"))?;
    let revision = status.header.as_ref().map_or(0, |h| h.revision);
    let hash = client
        .maintenance_hash_kv(revision)
        .await
        .map_err(|e| format!("{endpoint}: hashkv: {e}"))?;
    let applied = if status.raft_applied_index > 0 {
        status.raft_applied_index
    } else {
        status.raft_index
    };
    Ok(MemberState {
        revision,
        applied,
        hash: hash.hash,
    })
}

/// Waits up to `limit` until every member of `endpoints` answers with the same revision and
/// the same `HashKV`, twice in a row; returns that revision, or what differed.
pub async fn wait_converged(endpoints: &[String], limit: Duration) -> Result<Revision, String> {
    let deadline = Instant::now() + limit;
    let mut last = String::from("no member answered");
    let mut previous: Option<MemberState> = None;
    while Instant::now() < deadline {
        let mut states = Vec::new();
        for endpoint in endpoints {
            match member_state(endpoint).await {
                Ok(state) => states.push(state),
                Err(e) => {
                    last = e;
                    break;
                }
            }
        }
        if states.len() == endpoints.len() {
            let first = states[0];
            let same = states
                .iter()
                .all(|s| s.revision == first.revision && s.hash == first.hash);
            if same && previous.is_some_and(|p| p.revision == first.revision) {
                return Ok(first.revision);
            }
            previous = same.then_some(first);
            last = states
                .iter()
                .zip(endpoints)
                .map(|(s, e)| {
                    format!(
                        "{e}: revision {} applied {} hash {}",
                        s.revision, s.applied, s.hash
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Err(format!(
        "the members did not converge within {limit:?}: {last}"
    ))
}

/// Every key's state at `revision`.
async fn state_at(
    client: &Client,
    revision: Revision,
) -> Result<BTreeMap<Vec<u8>, KeyValue>, String> {
    let request = RangeRequest {
        key: vec![0],
        range_end: vec![0],
        revision,
        ..Default::default()
    };
    let mut tries = 0;
    loop {
        match client.kv_range(request.clone()).await {
            Ok(response) => {
                return Ok(response
                    .kvs
                    .iter()
                    .map(|kv| (kv.key.clone(), key_value_of(kv)))
                    .collect());
            }
            Err(e) if tries >= 5 => return Err(format!("range at revision {revision}: {e}")),
            Err(_) => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// The committed history up to `revision`, read from `endpoint`.
pub async fn committed(endpoint: &str, revision: Revision) -> Result<Vec<Commit>, String> {
    let client = Client::connect_with(&[endpoint.to_string()], options())
        .await
        .map_err(|e| format!("{endpoint}: {e}"))?;
    // Each reader reads a contiguous slice of revisions, plus the one before it.
    let per_reader = (revision + READERS - 1) / READERS;
    let mut readers = Vec::new();
    for reader in 0..READERS {
        let low = reader * per_reader + 1;
        let high = ((reader + 1) * per_reader).min(revision);
        if low > high {
            continue;
        }
        let client = client.clone();
        readers.push(tokio::spawn(async move {
            let mut previous = if low > 1 {
                state_at(&client, low - 1).await?
            } else {
                BTreeMap::new()
            };
            let mut commits = Vec::new();
            for r in low..=high {
                let current = state_at(&client, r).await?;
                if let Some(commit) = diff(r, &previous, &current) {
                    commits.push(commit);
                }
                previous = current;
            }
            Ok::<_, String>(commits)
        }));
    }
    let mut commits = Vec::new();
    for reader in readers {
        let part = reader
            .await
            .map_err(|e| format!("a reader of the committed history failed: {e}"))??;
        commits.extend(part);
    }
    Ok(commits)
}

/// The events that turned `before` into `after` at revision `r`.
fn diff(
    r: Revision,
    before: &BTreeMap<Vec<u8>, KeyValue>,
    after: &BTreeMap<Vec<u8>, KeyValue>,
) -> Option<Commit> {
    let mut events = Vec::new();
    for (key, kv) in after {
        if kv.mod_revision == r {
            events.push(Event {
                kind: EventType::Put,
                kv: kv.clone(),
                prev_kv: before.get(key).cloned(),
            });
        }
    }
    for (key, kv) in before {
        if !after.contains_key(key) {
            events.push(Event {
                kind: EventType::Delete,
                kv: KeyValue {
                    key: key.clone(),
                    mod_revision: r,
                    ..KeyValue::default()
                },
                prev_kv: Some(kv.clone()),
            });
        }
    }
    events.sort_by(|a, b| a.kv.key.cmp(&b.kv.key));
    (!events.is_empty()).then_some(Commit {
        revision: r,
        events,
        line: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, value: &str, create: Revision, modified: Revision, version: i64) -> KeyValue {
        KeyValue {
            key: key.as_bytes().to_vec(),
            value: value.as_bytes().to_vec(),
            create_revision: create,
            mod_revision: modified,
            version,
            lease: 0,
        }
    }

    #[test]
    fn diff_finds_puts_and_deletes() {
        let before: BTreeMap<_, _> = [
            (b"a".to_vec(), kv("a", "1", 2, 2, 1)),
            (b"b".to_vec(), kv("b", "1", 3, 3, 1)),
        ]
        .into();
        let after: BTreeMap<_, _> = [(b"a".to_vec(), kv("a", "2", 2, 4, 2))].into();
        let commit = diff(4, &before, &after).unwrap();
        assert_eq!(commit.events.len(), 2);
        assert_eq!(commit.events[0].kind, EventType::Put);
        assert_eq!(commit.events[0].prev_kv, Some(kv("a", "1", 2, 2, 1)));
        assert_eq!(commit.events[1].kind, EventType::Delete);
        assert_eq!(commit.events[1].kv.mod_revision, 4);
        assert!(diff(5, &after, &after).is_none());
    }
}
