//! etcdctl's `json` format (`printer_json.go`): the response struct through Go's
//! `encoding/json`, with the JSON names of etcd's generated Go structs (`cluster_id`,
//! `prev_kvs`, but `dbSize`, `raftIndex`, `peerURLs`, `ID`). Only the fields etcd 3.4's
//! structs have are written, so output matches etcdctl 3.4 against any server.

use cairn_client::pb::etcdserverpb as pb;
use cairn_client::pb::mvccpb::KeyValue;

use super::go_json::{self, Object};
use super::{EpHealth, EpStatus};

/// A JSON document as etcdctl prints it: one line.
pub fn line(json: String) -> String {
    json + "\n"
}

/// `ResponseHeader`.
pub fn header(h: &pb::ResponseHeader) -> String {
    Object::new()
        .uint("cluster_id", h.cluster_id)
        .uint("member_id", h.member_id)
        .int("revision", h.revision)
        .uint("raft_term", h.raft_term)
        .finish()
}

fn opt_header(h: &Option<pb::ResponseHeader>) -> Option<String> {
    h.as_ref().map(header)
}

/// `mvccpb.KeyValue`.
pub fn key_value(kv: &KeyValue) -> String {
    Object::new()
        .bytes("key", &kv.key)
        .int("create_revision", kv.create_revision)
        .int("mod_revision", kv.mod_revision)
        .int("version", kv.version)
        .bytes("value", &kv.value)
        .int("lease", kv.lease)
        .finish()
}

/// `RangeResponse`.
pub fn range(r: &pb::RangeResponse) -> String {
    Object::new()
        .opt("header", opt_header(&r.header))
        .list("kvs", r.kvs.iter().map(key_value).collect())
        .bool("more", r.more)
        .int("count", r.count)
        .finish()
}

/// `PutResponse`.
pub fn put(r: &pb::PutResponse) -> String {
    Object::new()
        .opt("header", opt_header(&r.header))
        .opt("prev_kv", r.prev_kv.as_ref().map(key_value))
        .finish()
}

/// `DeleteRangeResponse`.
pub fn delete_range(r: &pb::DeleteRangeResponse) -> String {
    Object::new()
        .opt("header", opt_header(&r.header))
        .int("deleted", r.deleted)
        .list("prev_kvs", r.prev_kvs.iter().map(key_value).collect())
        .finish()
}

/// `TxnResponse`; each `ResponseOp` is `{"Response":{"ResponsePut":{...}}}`, as Go encodes
/// the oneof wrapper structs.
pub fn txn(r: &pb::TxnResponse) -> String {
    Object::new()
        .opt("header", opt_header(&r.header))
        .bool("succeeded", r.succeeded)
        .list("responses", r.responses.iter().map(response_op).collect())
        .finish()
}

fn response_op(op: &pb::ResponseOp) -> String {
    use pb::response_op::Response;
    let inner = op.response.as_ref().map(|response| match response {
        Response::ResponseRange(r) => Object::new().raw("ResponseRange", range(r)),
        Response::ResponsePut(r) => Object::new().raw("ResponsePut", put(r)),
        Response::ResponseDeleteRange(r) => {
            Object::new().raw("ResponseDeleteRange", delete_range(r))
        }
        Response::ResponseTxn(r) => Object::new().raw("ResponseTxn", txn(r)),
    });
    Object::new()
        .opt("Response", inner.map(Object::finish))
        .finish()
}

/// `MemberListResponse`.
pub fn member_list(r: &pb::MemberListResponse) -> String {
    Object::new()
        .opt("header", opt_header(&r.header))
        .list("members", r.members.iter().map(member).collect())
        .finish()
}

/// `Member`.
pub fn member(m: &pb::Member) -> String {
    Object::new()
        .uint("ID", m.id)
        .str("name", &m.name)
        .list("peerURLs", strings(&m.peer_ur_ls))
        .list("clientURLs", strings(&m.client_ur_ls))
        .bool("isLearner", m.is_learner)
        .finish()
}

/// `StatusResponse` (etcd 3.4's fields only).
pub fn status(s: &pb::StatusResponse) -> String {
    Object::new()
        .opt("header", opt_header(&s.header))
        .str("version", &s.version)
        .int("dbSize", s.db_size)
        .uint("leader", s.leader)
        .uint("raftIndex", s.raft_index)
        .uint("raftTerm", s.raft_term)
        .uint("raftAppliedIndex", s.raft_applied_index)
        .list("errors", strings(&s.errors))
        .int("dbSizeInUse", s.db_size_in_use)
        .bool("isLearner", s.is_learner)
        .finish()
}

/// `[]epStatus`: `[{"Endpoint":...,"Status":{...}}]` (an empty list is `[]`).
pub fn endpoint_status(list: &[EpStatus]) -> String {
    go_json::array(
        list.iter()
            .map(|ep| {
                Object::new()
                    .raw("Endpoint", go_json::string(ep.endpoint.as_bytes()))
                    .raw("Status", status(&ep.status))
                    .finish()
            })
            .collect(),
    )
}

/// `[]epHealth`: `[{"endpoint":...,"health":true,"took":"..."}]`, `error` when set.
pub fn endpoint_health(list: &[EpHealth]) -> String {
    go_json::array(
        list.iter()
            .map(|h| {
                Object::new()
                    .raw("endpoint", go_json::string(h.endpoint.as_bytes()))
                    .raw("health", h.health.to_string())
                    .raw("took", go_json::string(h.took.as_bytes()))
                    .str("error", &h.error)
                    .finish()
            })
            .collect(),
    )
}

fn strings(items: &[String]) -> Vec<String> {
    items
        .iter()
        .map(|s| go_json::string(s.as_bytes()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr() -> Option<pb::ResponseHeader> {
        Some(pb::ResponseHeader {
            cluster_id: 324952591200643719,
            member_id: 3319814642761637952,
            revision: 3,
            raft_term: 2,
        })
    }

    #[test]
    fn range_matches_etcdctl() {
        let r = pb::RangeResponse {
            header: hdr(),
            kvs: vec![KeyValue {
                key: b"foo".to_vec(),
                create_revision: 2,
                mod_revision: 3,
                version: 2,
                value: b"bar2".to_vec(),
                lease: 0,
            }],
            more: false,
            count: 1,
        };
        assert_eq!(
            range(&r),
            r#"{"header":{"cluster_id":324952591200643719,"member_id":3319814642761637952,"revision":3,"raft_term":2},"kvs":[{"key":"Zm9v","create_revision":2,"mod_revision":3,"version":2,"value":"YmFyMg=="}],"count":1}"#
        );
    }

    #[test]
    fn empty_range_is_only_the_header() {
        let r = pb::RangeResponse {
            header: hdr(),
            ..Default::default()
        };
        assert!(range(&r).ends_with(r#""raft_term":2}}"#));
    }

    #[test]
    fn txn_wraps_each_response_like_gos_oneof() {
        use pb::response_op::Response;
        let inner = pb::PutResponse {
            header: Some(pb::ResponseHeader {
                revision: 8,
                ..Default::default()
            }),
            prev_kv: None,
        };
        let r = pb::TxnResponse {
            header: None,
            succeeded: true,
            responses: vec![
                pb::ResponseOp {
                    response: Some(Response::ResponsePut(inner)),
                },
                pb::ResponseOp { response: None },
            ],
        };
        assert_eq!(
            txn(&r),
            r#"{"succeeded":true,"responses":[{"Response":{"ResponsePut":{"header":{"revision":8}}}},{}]}"#
        );
    }

    #[test]
    fn member_list_uses_gos_field_names() {
        let r = pb::MemberListResponse {
            header: Some(pb::ResponseHeader {
                cluster_id: 1,
                member_id: 2,
                revision: 0,
                raft_term: 2,
            }),
            members: vec![pb::Member {
                id: 2,
                name: "default".into(),
                peer_ur_ls: vec!["http://127.0.0.1:23800".into()],
                client_ur_ls: vec!["http://127.0.0.1:23790".into()],
                is_learner: false,
            }],
        };
        assert_eq!(
            member_list(&r),
            r#"{"header":{"cluster_id":1,"member_id":2,"raft_term":2},"members":[{"ID":2,"name":"default","peerURLs":["http://127.0.0.1:23800"],"clientURLs":["http://127.0.0.1:23790"]}]}"#
        );
    }

    #[test]
    fn endpoint_health_omits_an_empty_error() {
        let h = EpHealth {
            endpoint: "h:1".into(),
            health: true,
            took: "1.5ms".into(),
            error: String::new(),
        };
        assert_eq!(
            endpoint_health(&[h]),
            r#"[{"endpoint":"h:1","health":true,"took":"1.5ms"}]"#
        );
        assert_eq!(endpoint_status(&[]), "[]");
    }
}
