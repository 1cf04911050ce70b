//! The rows etcdctl's simple and table printers share (`makeMemberListTable`,
//! `makeEndpointStatusTable`, `makeEndpointHealthTable` in `printer.go`).

use cairn_client::pb::etcdserverpb as pb;

use super::humanize;
use super::{EpHealth, EpStatus};

/// A header and its rows.
pub type Table = (Vec<&'static str>, Vec<Vec<String>>);

/// `member list`: ID (hex), status, name, peer URLs, client URLs, learner.
pub fn member_list(r: &pb::MemberListResponse) -> Table {
    let header = vec![
        "ID",
        "Status",
        "Name",
        "Peer Addrs",
        "Client Addrs",
        "Is Learner",
    ];
    let rows = r
        .members
        .iter()
        .map(|m| {
            let status = if m.name.is_empty() {
                "unstarted"
            } else {
                "started"
            };
            vec![
                format!("{:x}", m.id),
                status.to_string(),
                m.name.clone(),
                m.peer_ur_ls.join(","),
                m.client_ur_ls.join(","),
                m.is_learner.to_string(),
            ]
        })
        .collect();
    (header, rows)
}

/// `endpoint health`: endpoint, health, took, error.
pub fn endpoint_health(list: &[EpHealth]) -> Table {
    let header = vec!["endpoint", "health", "took", "error"];
    let rows = list
        .iter()
        .map(|h| {
            vec![
                h.endpoint.clone(),
                h.health.to_string(),
                h.took.clone(),
                h.error.clone(),
            ]
        })
        .collect();
    (header, rows)
}

/// `endpoint status`: endpoint, member ID, version, DB size, leadership, raft progress.
pub fn endpoint_status(list: &[EpStatus]) -> Table {
    let header = vec![
        "endpoint",
        "ID",
        "version",
        "db size",
        "is leader",
        "is learner",
        "raft term",
        "raft index",
        "raft applied index",
        "errors",
    ];
    let rows = list.iter().map(status_row).collect();
    (header, rows)
}

fn status_row(ep: &EpStatus) -> Vec<String> {
    let s = &ep.status;
    let member_id = s.header.as_ref().map_or(0, |h| h.member_id);
    vec![
        ep.endpoint.clone(),
        format!("{member_id:x}"),
        s.version.clone(),
        humanize::bytes(u64::try_from(s.db_size).unwrap_or(0)),
        (s.leader == member_id).to_string(),
        s.is_learner.to_string(),
        s.raft_term.to_string(),
        s.raft_index.to_string(),
        s.raft_applied_index.to_string(),
        s.errors.join(", "),
    ]
}
