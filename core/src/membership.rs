//! Cluster membership as etcd defines it: member and cluster IDs derived deterministically
//! from the peer URLs and the cluster token, so the same `--initial-cluster` gives the same
//! IDs on every member (and the same IDs etcd itself would give).
//!
//! etcd: `membership.NewMember` hashes the sorted peer URLs joined with no separator, then the
//! cluster token, with SHA-1 and takes the first 8 bytes big-endian; `RaftCluster.genID`
//! hashes the sorted member IDs (8 bytes big-endian each) the same way.

use sha1::{Digest, Sha1};

use crate::api::cairnpb::MemberRecord;

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
