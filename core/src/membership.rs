//! Cluster membership as etcd defines it: member and cluster IDs derived deterministically
//! from the peer URLs and the cluster token, so the same `--initial-cluster` gives the same
//! IDs on every member (and the same IDs etcd itself would give).
//!
//! etcd: `membership.NewMember` hashes the sorted peer URLs joined with no separator, then the
//! cluster token, with SHA-1 and takes the first 8 bytes big-endian; `RaftCluster.genID`
//! hashes the sorted member IDs (8 bytes big-endian each) the same way.

use std::ops::ControlFlow;

use prost::Message as _;
use sha1::{Digest, Sha1};

use crate::api::cairnpb::MemberRecord;
use crate::storage::{Engine, Order, Space, StorageError, WriteBatch};

const CLUSTER_ID_KEY: &[u8] = b"membership/cluster_id";
const LOCAL_ID_KEY: &[u8] = b"membership/local_id";
const MEMBER_PREFIX: &[u8] = b"membership/member/";
const MEMBER_END: &[u8] = b"membership/member0";
const REMOVED_PREFIX: &[u8] = b"membership/removed/";
const REMOVED_END: &[u8] = b"membership/removed0";

/// The membership a member keeps in its state machine (Meta space): written at bootstrap or
/// when joining, changed only by applied configuration changes, read back at restart (the
/// `--initial-cluster` flags are then ignored, as etcd does).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterState {
    /// The cluster id.
    pub cluster_id: u64,
    /// This member's id.
    pub local_id: u64,
    /// Every member, ordered by id.
    pub members: Vec<MemberRecord>,
    /// Every member ever removed, ordered by id (etcd's `RaftCluster.removed`): their raft
    /// traffic is refused, so a removed member that missed its removal learns of it.
    pub removed: Vec<u64>,
}

fn member_key(id: u64) -> Vec<u8> {
    [MEMBER_PREFIX, &id.to_be_bytes()].concat()
}

fn removed_key(id: u64) -> Vec<u8> {
    [REMOVED_PREFIX, &id.to_be_bytes()].concat()
}

fn corrupt(reason: String) -> StorageError {
    StorageError::Corrupt {
        space: Space::Meta.name(),
        reason,
    }
}

fn read_u64(engine: &dyn Engine, space: Space, key: &[u8]) -> Result<Option<u64>, StorageError> {
    match engine.get(space, key)? {
        None => Ok(None),
        Some(bytes) => {
            let array: [u8; 8] = bytes.as_slice().try_into().map_err(|_| {
                corrupt(format!(
                    "{} has {} bytes, expected 8",
                    String::from_utf8_lossy(key),
                    bytes.len()
                ))
            })?;
            Ok(Some(u64::from_be_bytes(array)))
        }
    }
}

impl ClusterState {
    /// The stored membership, or `None` for a member that never started.
    pub fn load(engine: &dyn Engine) -> Result<Option<ClusterState>, StorageError> {
        let (Some(cluster_id), Some(local_id)) = (
            read_u64(engine, Space::Meta, CLUSTER_ID_KEY)?,
            read_u64(engine, Space::RaftState, LOCAL_ID_KEY)?,
        ) else {
            return Ok(None);
        };
        let mut members = Vec::new();
        let mut failure = None;
        engine.scan(
            Space::Meta,
            MEMBER_PREFIX,
            Some(MEMBER_END),
            Order::Ascending,
            &mut |_, value| match MemberRecord::decode(value) {
                Ok(member) => {
                    members.push(member);
                    ControlFlow::Continue(())
                }
                Err(e) => {
                    failure = Some(corrupt(format!("undecodable member record: {e}")));
                    ControlFlow::Break(())
                }
            },
        )?;
        if let Some(e) = failure {
            return Err(e);
        }
        let mut removed = Vec::new();
        engine.scan(
            Space::Meta,
            REMOVED_PREFIX,
            Some(REMOVED_END),
            Order::Ascending,
            &mut |key, _| match <[u8; 8]>::try_from(&key[REMOVED_PREFIX.len()..]) {
                Ok(id) => {
                    removed.push(u64::from_be_bytes(id));
                    ControlFlow::Continue(())
                }
                Err(_) => {
                    failure = Some(corrupt(format!("bad removed-member key {key:?}")));
                    ControlFlow::Break(())
                }
            },
        )?;
        match failure {
            Some(e) => Err(e),
            None => Ok(Some(ClusterState {
                cluster_id,
                local_id,
                members,
                removed,
            })),
        }
    }

    /// Records the whole state (bootstrap or join) in `batch`.
    pub fn stage(&self, batch: &mut WriteBatch) {
        batch.put(
            Space::Meta,
            CLUSTER_ID_KEY.to_vec(),
            self.cluster_id.to_be_bytes().to_vec(),
        );
        // The local id is not part of the replicated state: it lives beside the Raft state,
        // so installing a leader's snapshot never changes who this member is.
        batch.put(
            Space::RaftState,
            LOCAL_ID_KEY.to_vec(),
            self.local_id.to_be_bytes().to_vec(),
        );
        for member in &self.members {
            stage_member(member, batch);
        }
        for &id in &self.removed {
            batch.put(Space::Meta, removed_key(id), Vec::new());
        }
    }

    /// Whether member `id` was removed from the cluster.
    pub fn is_removed(&self, id: u64) -> bool {
        self.removed.binary_search(&id).is_ok()
    }

    /// The member with `id`.
    pub fn member(&self, id: u64) -> Option<&MemberRecord> {
        self.members.iter().find(|m| m.id == id)
    }

    /// Adds or replaces `member`, in the view and in `batch`.
    pub fn upsert(&mut self, member: MemberRecord, batch: &mut WriteBatch) {
        stage_member(&member, batch);
        match self.members.iter_mut().find(|m| m.id == member.id) {
            Some(existing) => *existing = member,
            None => {
                self.members.push(member);
                self.members.sort_by_key(|m| m.id);
            }
        }
    }

    /// Forgets the whole stored membership (a restored snapshot starts a new cluster).
    pub fn stage_forget(engine: &dyn Engine, batch: &mut WriteBatch) -> Result<(), StorageError> {
        batch.delete(Space::Meta, CLUSTER_ID_KEY.to_vec());
        batch.delete(Space::RaftState, LOCAL_ID_KEY.to_vec());
        for (prefix, end) in [(MEMBER_PREFIX, MEMBER_END), (REMOVED_PREFIX, REMOVED_END)] {
            engine.scan(
                Space::Meta,
                prefix,
                Some(end),
                Order::Ascending,
                &mut |key, _| {
                    batch.delete(Space::Meta, key.to_vec());
                    ControlFlow::Continue(())
                },
            )?;
        }
        Ok(())
    }

    /// Removes member `id`, in the view and in `batch`.
    pub fn remove(&mut self, id: u64, batch: &mut WriteBatch) {
        batch.delete(Space::Meta, member_key(id));
        self.members.retain(|m| m.id != id);
        batch.put(Space::Meta, removed_key(id), Vec::new());
        if let Err(at) = self.removed.binary_search(&id) {
            self.removed.insert(at, id);
        }
    }
}

fn stage_member(member: &MemberRecord, batch: &mut WriteBatch) {
    batch.put(Space::Meta, member_key(member.id), member.encode_to_vec());
}

/// The ID of a member with `peer_urls` in the cluster named by `token`.
pub fn member_id(peer_urls: &[String], token: &str) -> u64 {
    let mut urls = peer_urls.to_vec();
    urls.sort();
    let mut hasher = Sha1::new();
    hasher.update(urls.concat().as_bytes());
    hasher.update(token.as_bytes());
    first_u64(&hasher.finalize())
}

/// The ID of the cluster made of `member_ids`.
pub fn cluster_id(member_ids: &[u64]) -> u64 {
    let mut ids = member_ids.to_vec();
    ids.sort_unstable();
    let mut hasher = Sha1::new();
    for id in ids {
        hasher.update(id.to_be_bytes());
    }
    first_u64(&hasher.finalize())
}

fn first_u64(digest: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(bytes)
}

/// The members named by an `--initial-cluster` list of `(name, peer URL)` pairs; a name
/// may appear several times (one member with several peer URLs), in first-seen order.
pub fn initial_members(pairs: &[(String, String)], token: &str) -> Vec<MemberRecord> {
    let mut members: Vec<MemberRecord> = Vec::new();
    for (name, url) in pairs {
        match members.iter_mut().find(|m| &m.name == name) {
            Some(member) => member.peer_urls.push(url.clone()),
            None => members.push(MemberRecord {
                name: name.clone(),
                peer_urls: vec![url.clone()],
                ..MemberRecord::default()
            }),
        }
    }
    for member in &mut members {
        member.id = member_id(&member.peer_urls, token);
    }
    members
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removed_members_are_remembered_across_a_reload_and_forgotten_with_the_cluster() {
        use crate::storage::mem::MemEngine;
        use crate::storage::{Durability, Engine as _};
        let engine = MemEngine::new();
        let member = |id: u64| MemberRecord {
            id,
            name: format!("m{id}"),
            ..MemberRecord::default()
        };
        let mut state = ClusterState {
            cluster_id: 7,
            local_id: 1,
            members: vec![member(1), member(2), member(3)],
            removed: Vec::new(),
        };
        let mut batch = WriteBatch::new();
        state.stage(&mut batch);
        state.remove(3, &mut batch);
        state.remove(2, &mut batch);
        engine.write(batch, Durability::Sync).unwrap();
        assert_eq!(state.removed, vec![2, 3]);
        let loaded = ClusterState::load(&engine).unwrap().unwrap();
        assert_eq!(loaded, state);
        assert!(loaded.is_removed(2) && loaded.is_removed(3) && !loaded.is_removed(1));
        assert_eq!(
            loaded.members.iter().map(|m| m.id).collect::<Vec<_>>(),
            vec![1]
        );

        let mut batch = WriteBatch::new();
        ClusterState::stage_forget(&engine, &mut batch).unwrap();
        engine.write(batch, Durability::Sync).unwrap();
        assert_eq!(ClusterState::load(&engine).unwrap(), None);
        let mut batch = WriteBatch::new();
        ClusterState {
            removed: Vec::new(),
            members: vec![member(1)],
            ..state
        }
        .stage(&mut batch);
        engine.write(batch, Durability::Sync).unwrap();
        let reloaded = ClusterState::load(&engine).unwrap().unwrap();
        assert!(reloaded.removed.is_empty(), "{reloaded:?}");
    }

    #[test]
    fn default_single_member_ids_match_etcd() {
        // `etcd` with no flags reports member 8e9e05c52164694d in cluster cdf818194e3a8c32.
        let id = member_id(&["http://localhost:2380".to_string()], "etcd-cluster");
        assert_eq!(format!("{id:x}"), "8e9e05c52164694d");
        assert_eq!(format!("{:x}", cluster_id(&[id])), "cdf818194e3a8c32");
    }

    #[test]
    fn member_id_ignores_url_order() {
        let a = member_id(&["http://b:2380".into(), "http://a:2380".into()], "t");
        let b = member_id(&["http://a:2380".into(), "http://b:2380".into()], "t");
        assert_eq!(a, b);
    }

    #[test]
    fn initial_members_groups_urls_by_name() {
        let pairs = vec![
            ("a".to_string(), "http://1:2380".to_string()),
            ("b".to_string(), "http://2:2380".to_string()),
            ("a".to_string(), "http://3:2380".to_string()),
        ];
        let members = initial_members(&pairs, "tok");
        assert_eq!(members.len(), 2);
        assert_eq!(members[0].peer_urls.len(), 2);
        assert_ne!(members[0].id, members[1].id);
    }
}
