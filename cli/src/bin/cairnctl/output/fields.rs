//! etcdctl's `fields` format (`printer_fields.go`): one `"Name" : value` line per field,
//! strings and bytes quoted as Go's `%q` quotes them.

use cairn_client::pb::etcdserverpb as pb;
use cairn_client::pb::mvccpb::KeyValue;

use super::{EpHealth, EpStatus};
use crate::go_strconv::{quote, quote_bytes};

/// The response header lines.
pub fn header(out: &mut String, h: &Option<pb::ResponseHeader>) {
    let h = h.unwrap_or_default();
    out.push_str(&format!("\"ClusterID\" : {}\n", h.cluster_id));
    out.push_str(&format!("\"MemberID\" : {}\n", h.member_id));
    out.push_str(&format!("\"Revision\" : {}\n", h.revision));
    out.push_str(&format!("\"RaftTerm\" : {}\n", h.raft_term));
}

/// A key-value's lines, each name prefixed (`Prev` for previous pairs).
pub fn key_value(out: &mut String, prefix: &str, kv: &KeyValue) {
    out.push_str(&format!("\"{prefix}Key\" : {}\n", quote_bytes(&kv.key)));
    out.push_str(&format!(
        "\"{prefix}CreateRevision\" : {}\n",
        kv.create_revision
    ));
    out.push_str(&format!("\"{prefix}ModRevision\" : {}\n", kv.mod_revision));
    out.push_str(&format!("\"{prefix}Version\" : {}\n", kv.version));
    out.push_str(&format!("\"{prefix}Value\" : {}\n", quote_bytes(&kv.value)));
    out.push_str(&format!("\"{prefix}Lease\" : {}\n", kv.lease));
}

/// A range response.
pub fn get(r: &pb::RangeResponse) -> String {
    let mut out = String::new();
    header(&mut out, &r.header);
    for kv in &r.kvs {
        key_value(&mut out, "", kv);
    }
    out.push_str(&format!("\"More\" : {}\n\"Count\" : {}\n", r.more, r.count));
    out
}

/// A put response.
pub fn put(r: &pb::PutResponse) -> String {
    let mut out = String::new();
    header(&mut out, &r.header);
    if let Some(prev) = &r.prev_kv {
        key_value(&mut out, "Prev", prev);
    }
    out
}

/// A delete response.
pub fn del(r: &pb::DeleteRangeResponse) -> String {
    let mut out = String::new();
    header(&mut out, &r.header);
    out.push_str(&format!("\"Deleted\" : {}\n", r.deleted));
    for kv in &r.prev_kvs {
        key_value(&mut out, "Prev", kv);
    }
    out
}

/// A txn response: its header and outcome, then each response in full.
pub fn txn(r: &pb::TxnResponse) -> String {
    use pb::response_op::Response;
    let mut out = String::new();
    header(&mut out, &r.header);
    out.push_str(&format!("\"Succeeded\" : {}\n", r.succeeded));
    for op in &r.responses {
        match &op.response {
            Some(Response::ResponseDeleteRange(d)) => out.push_str(&del(d)),
            Some(Response::ResponsePut(p)) => out.push_str(&put(p)),
            Some(Response::ResponseRange(g)) => out.push_str(&get(g)),
            other => out.push_str(&format!("\"Unknown\" : {}\n", quote(&format!("{other:?}")))),
        }
    }
    out
}

/// A member list: the header, then each member followed by a blank line.
pub fn member_list(r: &pb::MemberListResponse) -> String {
    let mut out = String::new();
    header(&mut out, &r.header);
    for m in &r.members {
        out.push_str(&format!(
            "\"ID\" : {}\n\"Name\" : {}\n",
            m.id,
            quote(&m.name)
        ));
        for u in &m.peer_ur_ls {
            out.push_str(&format!("\"PeerURL\" : {}\n", quote(u)));
        }
        for u in &m.client_ur_ls {
            out.push_str(&format!("\"ClientURL\" : {}\n", quote(u)));
        }
        out.push_str(&format!("\"IsLearner\" : {}\n\n", m.is_learner));
    }
    out
}

/// Health results, each followed by a blank line.
pub fn endpoint_health(list: &[EpHealth]) -> String {
    list.iter()
        .map(|h| {
            format!(
                "\"Endpoint\" : {}\n\"Health\" : {}\n\"Took\" : {}\n\"Error\" : {}\n\n",
                quote(&h.endpoint),
                h.health,
                h.took,
                h.error
            )
        })
        .collect()
}

/// Status results, each followed by a blank line.
pub fn endpoint_status(list: &[EpStatus]) -> String {
    let mut out = String::new();
    for ep in list {
        let s = &ep.status;
        header(&mut out, &s.header);
        out.push_str(&format!("\"Version\" : {}\n", quote(&s.version)));
        out.push_str(&format!("\"DBSize\" : {}\n", s.db_size));
        out.push_str(&format!("\"Leader\" : {}\n", s.leader));
        out.push_str(&format!("\"IsLearner\" : {}\n", s.is_learner));
        out.push_str(&format!("\"RaftIndex\" : {}\n", s.raft_index));
        out.push_str(&format!("\"RaftTerm\" : {}\n", s.raft_term));
        out.push_str(&format!(
            "\"RaftAppliedIndex\" : {}\n",
            s.raft_applied_index
        ));
        out.push_str(&format!("\"Errors\" : [{}]\n", s.errors.join(" ")));
        out.push_str(&format!("\"Endpoint\" : {}\n\n", quote(&ep.endpoint)));
    }
    out
}

/// A watch response: its header, then each event's type, previous pair and pair.
pub fn watch(r: &pb::WatchResponse) -> String {
    let mut out = String::new();
    header(&mut out, &r.header);
    for event in &r.events {
        out.push_str(&format!(
            "\"Type\" : {}\n",
            super::cluster::event_type(event)
        ));
        if let Some(prev) = &event.prev_kv {
            key_value(&mut out, "Prev", prev);
        }
        if let Some(kv) = &event.kv {
            key_value(&mut out, "", kv);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_with_previous_pair_prefixes_its_fields() {
        let r = pb::PutResponse {
            header: Some(pb::ResponseHeader {
                cluster_id: 1,
                member_id: 2,
                revision: 13,
                raft_term: 2,
            }),
            prev_kv: Some(KeyValue {
                key: b"p1".to_vec(),
                create_revision: 12,
                mod_revision: 12,
                version: 1,
                value: b"v1".to_vec(),
                lease: 0,
            }),
        };
        assert_eq!(
            put(&r),
            "\"ClusterID\" : 1\n\"MemberID\" : 2\n\"Revision\" : 13\n\"RaftTerm\" : 2\n\"PrevKey\" : \"p1\"\n\"PrevCreateRevision\" : 12\n\"PrevModRevision\" : 12\n\"PrevVersion\" : 1\n\"PrevValue\" : \"v1\"\n\"PrevLease\" : 0\n"
        );
    }

    #[test]
    fn get_ends_with_more_and_count() {
        let out = get(&pb::RangeResponse::default());
        assert!(out.ends_with("\"More\" : false\n\"Count\" : 0\n"));
    }

    #[test]
    fn values_are_go_quoted() {
        let mut out = String::new();
        key_value(
            &mut out,
            "",
            &KeyValue {
                key: b"a\tb".to_vec(),
                value: vec![0xff],
                ..Default::default()
            },
        );
        assert!(out.starts_with("\"Key\" : \"a\\tb\"\n"));
        assert!(out.contains("\"Value\" : \"\\xff\"\n"));
    }
}
