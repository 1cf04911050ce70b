//! Membership changes as a fault: the nemesis removes a member (the leader half of the
//! time) through the Cluster API, and later adds it back as a new member on an empty disk,
//! as a voter or as a learner it promotes once in sync: etcd's documented procedure for
//! replacing a member, run while other faults are in force.
//!
//! Every call here may time out with an unknown outcome, like any write. So the nemesis never
//! trusts its own record of what it did: before each repair step it reads the membership the
//! cluster has committed (a linearizable read first, so that the member it asks has applied
//! every configuration change committed before, then MemberList on the same member) and
//! takes the next step from there. A slot is repaired when its peer URL belongs to a started
//! voter that runs in the slot.

use std::time::Duration;

use cairn_client::pb::etcdserverpb::{
    Member, MemberAddRequest, MemberListRequest, MemberPromoteRequest, MemberRemoveRequest,
    RangeRequest,
};
use cairn_client::{Client, ConnectOptions};

/// How long one membership call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// The committed membership, as read through `endpoint` behind a linearizable read.
pub async fn members(endpoint: String) -> Result<Vec<Member>, String> {
    let client = connect(&endpoint).await?;
    let barrier = RangeRequest {
        key: b"membership-barrier".to_vec(),
        ..Default::default()
    };
    client
        .kv_range(barrier)
        .await
        .map_err(|e| format!("linearizable read on {endpoint}: {e}"))?;
    let list = client
        .cluster_member_list(MemberListRequest::default())
        .await
        .map_err(|e| format!("member list on {endpoint}: {e}"))?;
    Ok(list.members)
}

/// Removes the member with peer URL `peer_url` through `endpoint`; says what happened.
pub async fn remove(endpoint: String, peer_url: String) -> String {
    let members = match members(endpoint.clone()).await {
        Ok(members) => members,
        Err(e) => return format!("not removed: {e}"),
    };
    let Some(member) = find(&members, &peer_url) else {
        return format!("not removed: {peer_url} is not a member");
    };
    let id = member.id;
    let client = match connect(&endpoint).await {
        Ok(client) => client,
        Err(e) => return format!("not removed: {e}"),
    };
    match client
        .cluster_member_remove(MemberRemoveRequest { id })
        .await
    {
        Ok(_) => format!("removed {id:x}"),
        Err(e) => format!("removing {id:x}: {e}"),
    }
}

/// Adds a member with peer URL `peer_url` through `endpoint`: its id and the members to
/// name in its `--initial-cluster`.
pub async fn add(
    endpoint: String,
    peer_url: String,
    learner: bool,
) -> Result<(u64, Vec<Member>), String> {
    let client = connect(&endpoint).await?;
    let request = MemberAddRequest {
        peer_ur_ls: vec![peer_url],
        is_learner: learner,
    };
    let response = client
        .cluster_member_add(request)
        .await
        .map_err(|e| e.to_string())?;
    let id = response.member.map_or(0, |m| m.id);
    Ok((id, response.members))
}

/// Promotes learner `id` through `endpoint`.
pub async fn promote(endpoint: String, id: u64) -> Result<(), String> {
    let client = connect(&endpoint).await?;
    client
        .cluster_member_promote(MemberPromoteRequest { id })
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The member that advertises `peer_url`.
pub fn find<'a>(members: &'a [Member], peer_url: &str) -> Option<&'a Member> {
    members
        .iter()
        .find(|m| m.peer_ur_ls.iter().any(|u| u == peer_url))
}

/// `--initial-cluster` for a member named `name` joining with `peer_url`: every started
/// member by name and peer URL, and itself.
pub fn initial_cluster(members: &[Member], name: &str, peer_url: &str) -> Vec<(String, String)> {
    let mut cluster: Vec<(String, String)> = members
        .iter()
        .filter(|m| !m.name.is_empty() && m.name != name)
        .filter_map(|m| {
            m.peer_ur_ls
                .first()
                .map(|url| (m.name.clone(), url.clone()))
        })
        .collect();
    cluster.push((name.to_string(), peer_url.to_string()));
    cluster
}

async fn connect(endpoint: &str) -> Result<Client, String> {
    let options = ConnectOptions {
        dial_timeout: Some(Duration::from_secs(1)),
        request_timeout: Some(CALL_TIMEOUT),
        tls: None,
    };
    Client::connect_with(&[endpoint.to_string()], options)
        .await
        .map_err(|e| format!("cannot connect to {endpoint}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: u64, name: &str, url: &str) -> Member {
        Member {
            id,
            name: name.to_string(),
            peer_ur_ls: vec![url.to_string()],
            ..Default::default()
        }
    }

    #[test]
    fn initial_cluster_names_started_members_and_the_joining_one() {
        let members = [
            member(1, "n1", "http://10.0.0.1:2380"),
            member(2, "", "http://10.0.0.2:2380"),
            member(3, "n3", "http://10.0.0.3:2380"),
        ];
        assert_eq!(
            initial_cluster(&members, "n2", "http://10.0.0.2:2380"),
            vec![
                ("n1".to_string(), "http://10.0.0.1:2380".to_string()),
                ("n3".to_string(), "http://10.0.0.3:2380".to_string()),
                ("n2".to_string(), "http://10.0.0.2:2380".to_string()),
            ]
        );
        assert_eq!(
            find(&members, "http://10.0.0.2:2380").map(|m| m.id),
            Some(2)
        );
        assert!(find(&members, "http://10.0.0.9:2380").is_none());
    }
}
