//! How etcdctl prints the membership, leadership, lease and watch commands
//! (`printer_simple.go`, `printer_json.go`, `printer_fields.go`, `printer_protobuf.go`).
//! The lease responses are clientv3's structs, which embed the header: in JSON its fields
//! sit at the top level (`{"cluster_id":…,"ID":…,"TTL":…}`), and `-w protobuf` encodes
//! only that header (the one protobuf message Go finds in the struct).

use cairn_client::pb::etcdserverpb as pb;
use cairn_client::pb::mvccpb::{Event, event::EventType};

use super::go_json::{self, Object};
use super::json;
use crate::go_strconv::quote;

/// The environment `member add` prints for the new member (simple format).
#[derive(Debug, Clone, Copy)]
pub struct MemberAdded<'a> {
    /// The name given on the command line.
    pub name: &'a str,
    /// The new member's ID.
    pub id: u64,
    /// `--peer-urls` as given.
    pub peer_urls: &'a str,
    /// The member list read after the add.
    pub members: &'a pb::MemberListResponse,
}

impl MemberAdded<'_> {
    /// `ETCD_NAME`, `ETCD_INITIAL_CLUSTER`, `ETCD_INITIAL_ADVERTISE_PEER_URLS` and
    /// `ETCD_INITIAL_CLUSTER_STATE`, after a blank line.
    pub fn environment(&self) -> String {
        let mut cluster = Vec::new();
        for member in &self.members.members {
            let name = match member.id == self.id {
                true => self.name,
                false => member.name.as_str(),
            };
            for url in &member.peer_ur_ls {
                cluster.push(format!("{name}={url}"));
            }
        }
        format!(
            "\nETCD_NAME={}\nETCD_INITIAL_CLUSTER={}\nETCD_INITIAL_ADVERTISE_PEER_URLS={}\nETCD_INITIAL_CLUSTER_STATE=\"existing\"\n",
            quote(self.name),
            quote(&cluster.join(",")),
            quote(self.peer_urls)
        )
    }
}

fn cluster_id(header: &Option<pb::ResponseHeader>) -> u64 {
    header.as_ref().map_or(0, |h| h.cluster_id)
}

/// `member add`, simple.
pub fn member_add_simple(r: &pb::MemberAddResponse) -> String {
    let member = r.member.clone().unwrap_or_default();
    let learner = if member.is_learner {
        " as learner "
    } else {
        " "
    };
    format!(
        "Member {:16x} added{learner}to cluster {:16x}\n",
        member.id,
        cluster_id(&r.header)
    )
}

/// `member remove|update|promote`, simple: `Member <id> <verb> cluster <id>`.
pub fn member_change_simple(id: u64, verb: &str, header: &Option<pb::ResponseHeader>) -> String {
    format!(
        "Member {id:16x} {verb} cluster {:16x}\n",
        cluster_id(header)
    )
}

/// A member list answer (`MemberAddResponse` adds the new `member`), as JSON.
pub fn members_json(
    header: &Option<pb::ResponseHeader>,
    member: Option<&pb::Member>,
    members: &[pb::Member],
) -> String {
    let list = pb::MemberListResponse {
        header: *header,
        members: members.to_vec(),
    };
    let whole = json::member_list(&list);
    match member {
        None => whole,
        Some(m) => insert_after_header(&whole, &json::member(m)),
    }
}

/// `{"header":…,"members":…}` with `"member":…` placed after the header (Go's field order
/// of `MemberAddResponse`).
fn insert_after_header(whole: &str, member: &str) -> String {
    let body = whole.trim_start_matches('{');
    match body.find(",\"members\"") {
        Some(at) => format!("{{{},\"member\":{member}{}", &body[..at], &body[at..]),
        None if body == "}" => format!("{{\"member\":{member}}}"),
        None => format!("{{{},\"member\":{member}}}", body.trim_end_matches('}')),
    }
}

/// `move-leader`, simple.
pub fn move_leader_simple(leader: u64, target: u64) -> String {
    format!("Leadership transferred from {leader:x} to {target:x}\n")
}

/// The header's fields, flattened into an object (clientv3's embedded `*ResponseHeader`).
fn flat_header(h: &Option<pb::ResponseHeader>) -> Object {
    let h = h.unwrap_or_default();
    Object::new()
        .uint("cluster_id", h.cluster_id)
        .uint("member_id", h.member_id)
        .int("revision", h.revision)
        .uint("raft_term", h.raft_term)
}

/// `lease grant`, JSON.
pub fn lease_grant_json(r: &pb::LeaseGrantResponse) -> String {
    flat_header(&r.header)
        .raw("ID", r.id.to_string())
        .raw("TTL", r.ttl.to_string())
        .raw("Error", go_json::string(r.error.as_bytes()))
        .finish()
}

/// `lease keep-alive`, JSON.
pub fn lease_keep_alive_json(r: &pb::LeaseKeepAliveResponse) -> String {
    flat_header(&r.header)
        .raw("ID", r.id.to_string())
        .raw("TTL", r.ttl.to_string())
        .finish()
}

/// `lease timetolive`, JSON (`keys` is `null` when there are none).
pub fn lease_time_to_live_json(r: &pb::LeaseTimeToLiveResponse) -> String {
    let keys = match r.keys.is_empty() {
        true => "null".to_string(),
        false => go_json::array(r.keys.iter().map(|k| base64(k)).collect()),
    };
    flat_header(&r.header)
        .raw("id", r.id.to_string())
        .raw("ttl", r.ttl.to_string())
        .raw("granted-ttl", r.granted_ttl.to_string())
        .raw("keys", keys)
        .finish()
}

/// `lease list`, JSON (`leases` is `null` when there are none).
pub fn lease_list_json(r: &pb::LeaseLeasesResponse) -> String {
    let leases = match r.leases.is_empty() {
        true => "null".to_string(),
        false => go_json::array(
            r.leases
                .iter()
                .map(|l| Object::new().raw("id", l.id.to_string()).finish())
                .collect(),
        ),
    };
    flat_header(&r.header).raw("leases", leases).finish()
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    format!(
        "\"{}\"",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// The header lines of the fields format.
pub fn fields_header(h: &Option<pb::ResponseHeader>) -> String {
    let h = h.unwrap_or_default();
    format!(
        "\"ClusterID\" : {}\n\"MemberID\" : {}\n\"Revision\" : {}\n\"RaftTerm\" : {}\n",
        h.cluster_id, h.member_id, h.revision, h.raft_term
    )
}

/// `lease timetolive`, simple.
pub fn lease_time_to_live_simple(r: &pb::LeaseTimeToLiveResponse, keys: bool) -> String {
    if r.granted_ttl == 0 && r.ttl == -1 {
        return format!("lease {:016x} already expired\n", r.id);
    }
    let mut text = format!(
        "lease {:016x} granted with TTL({}s), remaining({}s)",
        r.id, r.granted_ttl, r.ttl
    );
    if keys {
        let names: Vec<String> = r
            .keys
            .iter()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect();
        text.push_str(&format!(", attached keys([{}])", names.join(" ")));
    }
    text + "\n"
}

/// `lease timetolive`, fields.
pub fn lease_time_to_live_fields(r: &pb::LeaseTimeToLiveResponse) -> String {
    let mut text = fields_header(&r.header);
    text.push_str(&format!(
        "\"ID\" : {}\n\"TTL\" : {}\n\"GrantedTTL\" : {}\n",
        r.id, r.ttl, r.granted_ttl
    ));
    for key in &r.keys {
        text.push_str(&format!(
            "\"Key\" : {}\n",
            quote(&String::from_utf8_lossy(key))
        ));
    }
    text
}

/// `lease list`, simple.
pub fn lease_list_simple(r: &pb::LeaseLeasesResponse) -> String {
    let mut text = format!("found {} leases\n", r.leases.len());
    for lease in &r.leases {
        text.push_str(&format!("{:016x}\n", lease.id));
    }
    text
}

/// `lease list`, fields.
pub fn lease_list_fields(r: &pb::LeaseLeasesResponse) -> String {
    let mut text = fields_header(&r.header);
    for lease in &r.leases {
        text.push_str(&format!("\"ID\" : {}\n", lease.id));
    }
    text
}

/// The name Go prints for an event type.
pub fn event_type(event: &Event) -> &'static str {
    match EventType::try_from(event.r#type) {
        Ok(EventType::Delete) => "DELETE",
        _ => "PUT",
    }
}

/// One watch response as clientv3's `WatchResponse` struct in JSON (exported Go field
/// names, no omission), as etcdctl's JSON printer writes it.
pub fn watch_json(r: &pb::WatchResponse) -> String {
    let events: Vec<String> = r.events.iter().map(event_json).collect();
    Object::new()
        .raw(
            "Header",
            r.header.as_ref().map_or_else(
                || json::header(&pb::ResponseHeader::default()),
                json::header,
            ),
        )
        .raw(
            "Events",
            match events.is_empty() {
                true => "null".to_string(),
                false => go_json::array(events),
            },
        )
        .raw("CompactRevision", r.compact_revision.to_string())
        .raw("Canceled", r.canceled.to_string())
        .raw("Created", r.created.to_string())
        .finish()
}

fn event_json(event: &Event) -> String {
    Object::new()
        .int("type", i64::from(event.r#type))
        .opt("kv", event.kv.as_ref().map(json::key_value))
        .opt("prev_kv", event.prev_kv.as_ref().map(json::key_value))
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Option<pb::ResponseHeader> {
        Some(pb::ResponseHeader {
            cluster_id: 0x7e1d_e051_b630_89b8,
            member_id: 9,
            revision: 1,
            raft_term: 2,
        })
    }

    #[test]
    fn member_add_environment_names_the_new_member() {
        let members = pb::MemberListResponse {
            header: header(),
            members: vec![
                pb::Member {
                    id: 1,
                    name: "m0".into(),
                    peer_ur_ls: vec!["http://127.0.0.1:26380".into()],
                    ..Default::default()
                },
                pb::Member {
                    id: 2,
                    peer_ur_ls: vec!["http://127.0.0.1:26390".into()],
                    ..Default::default()
                },
            ],
        };
        let added = MemberAdded {
            name: "n1",
            id: 2,
            peer_urls: "http://127.0.0.1:26390",
            members: &members,
        };
        assert_eq!(
            added.environment(),
            "\nETCD_NAME=\"n1\"\nETCD_INITIAL_CLUSTER=\"m0=http://127.0.0.1:26380,n1=http://127.0.0.1:26390\"\nETCD_INITIAL_ADVERTISE_PEER_URLS=\"http://127.0.0.1:26390\"\nETCD_INITIAL_CLUSTER_STATE=\"existing\"\n"
        );
        let response = pb::MemberAddResponse {
            header: header(),
            member: Some(members.members[1].clone()),
            members: members.members.clone(),
        };
        assert_eq!(
            member_add_simple(&response),
            "Member                2 added to cluster 7e1de051b63089b8\n"
        );
    }

    #[test]
    fn lease_json_flattens_the_header_like_clientv3() {
        let grant = pb::LeaseGrantResponse {
            header: header(),
            id: 5,
            ttl: 50,
            error: String::new(),
        };
        assert_eq!(
            lease_grant_json(&grant),
            r#"{"cluster_id":9087666264657136056,"member_id":9,"revision":1,"raft_term":2,"ID":5,"TTL":50,"Error":""}"#
                .replace("9087666264657136056", &0x7e1d_e051_b630_89b8u64.to_string())
        );
        let ttl = pb::LeaseTimeToLiveResponse {
            header: header(),
            id: 4660,
            ttl: -1,
            granted_ttl: 0,
            keys: vec![],
        };
        assert!(
            lease_time_to_live_json(&ttl)
                .ends_with(r#""id":4660,"ttl":-1,"granted-ttl":0,"keys":null}"#)
        );
        assert_eq!(
            lease_time_to_live_simple(&ttl, false),
            "lease 0000000000001234 already expired\n"
        );
    }

    #[test]
    fn timetolive_lists_attached_keys_like_gos_slice_print() {
        let ttl = pb::LeaseTimeToLiveResponse {
            header: header(),
            id: 0x51c6,
            ttl: 99,
            granted_ttl: 100,
            keys: vec![b"k1".to_vec(), b"k2".to_vec()],
        };
        assert_eq!(
            lease_time_to_live_simple(&ttl, true),
            "lease 00000000000051c6 granted with TTL(100s), remaining(99s), attached keys([k1 k2])\n"
        );
    }

    #[test]
    fn member_add_json_puts_the_new_member_after_the_header() {
        let m = pb::Member {
            id: 2,
            ..Default::default()
        };
        let text = members_json(&header(), Some(&m), std::slice::from_ref(&m));
        assert!(
            text.contains(r#""raft_term":2},"member":{"ID":2},"members":[{"ID":2}]}"#),
            "{text}"
        );
        assert_eq!(members_json(&None, Some(&m), &[]), r#"{"member":{"ID":2}}"#);
    }
}
