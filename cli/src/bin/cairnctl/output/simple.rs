//! etcdctl's `simple` format (`printer_simple.go`): keys and values on their own lines,
//! `OK` for a put, the deleted count for a delete, `SUCCESS`/`FAILURE` then each response
//! for a txn, comma-separated rows for member and endpoint commands. Keys and values are
//! written as raw bytes, as Go's `fmt.Println(string(b))` does.

use cairn_client::pb::etcdserverpb as pb;
use cairn_client::pb::mvccpb::KeyValue;

use super::rows;
use super::{EpHealth, EpStatus};

/// A range response: each key and value (only values with `value_only`).
pub fn get(r: &pb::RangeResponse, hex: bool, value_only: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for kv in &r.kvs {
        push_kv(&mut out, kv, hex, value_only);
    }
    out
}

/// A put response: `OK`, then the previous pair if asked for.
pub fn put(r: &pb::PutResponse, hex: bool) -> Vec<u8> {
    let mut out = b"OK\n".to_vec();
    if let Some(prev) = &r.prev_kv {
        push_kv(&mut out, prev, hex, false);
    }
    out
}

/// A delete response: the count, then the deleted pairs if asked for.
pub fn del(r: &pb::DeleteRangeResponse, hex: bool) -> Vec<u8> {
    let mut out = format!("{}\n", r.deleted).into_bytes();
    for kv in &r.prev_kvs {
        push_kv(&mut out, kv, hex, false);
    }
    out
}

/// A txn response: `SUCCESS` or `FAILURE`, then each response after a blank line.
pub fn txn(r: &pb::TxnResponse, hex: bool) -> Vec<u8> {
    let mut out = if r.succeeded {
        b"SUCCESS\n".to_vec()
    } else {
        b"FAILURE\n".to_vec()
    };
    for op in &r.responses {
        out.push(b'\n');
        match &op.response {
            Some(pb::response_op::Response::ResponseRange(g)) => out.extend(get(g, hex, false)),
            Some(pb::response_op::Response::ResponsePut(p)) => out.extend(put(p, hex)),
            Some(pb::response_op::Response::ResponseDeleteRange(d)) => out.extend(del(d, hex)),
            other => out.extend(format!("unexpected response {other:?}\n").into_bytes()),
        }
    }
    out
}

/// A watch response: for each event its type, the previous pair if any, and the pair.
pub fn watch(r: &pb::WatchResponse, hex: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for event in &r.events {
        out.extend_from_slice(super::cluster::event_type(event).as_bytes());
        out.push(b'\n');
        if let Some(prev) = &event.prev_kv {
            push_kv(&mut out, prev, hex, false);
        }
        if let Some(kv) = &event.kv {
            push_kv(&mut out, kv, hex, false);
        }
    }
    out
}

/// Member rows, comma separated.
pub fn member_list(r: &pb::MemberListResponse) -> String {
    join_rows(rows::member_list(r).1)
}

/// Endpoint status rows, comma separated.
pub fn endpoint_status(list: &[EpStatus]) -> String {
    join_rows(rows::endpoint_status(list).1)
}

/// One line per endpoint (etcdctl writes these to stderr).
pub fn endpoint_health(list: &[EpHealth]) -> String {
    list.iter()
        .map(|h| match h.error.is_empty() {
            true => format!(
                "{} is healthy: successfully committed proposal: took = {}\n",
                h.endpoint, h.took
            ),
            false => format!(
                "{} is unhealthy: failed to commit proposal: {}\n",
                h.endpoint, h.error
            ),
        })
        .collect()
}

fn join_rows(rows: Vec<Vec<String>>) -> String {
    rows.into_iter().map(|row| row.join(", ") + "\n").collect()
}

/// etcdctl's `printKV`: key line (unless value only) and value line.
fn push_kv(out: &mut Vec<u8>, kv: &KeyValue, hex: bool, value_only: bool) {
    if !value_only {
        push_bytes(out, &kv.key, hex);
    }
    push_bytes(out, &kv.value, hex);
}

fn push_bytes(out: &mut Vec<u8>, bytes: &[u8], hex: bool) {
    if hex {
        for b in bytes {
            out.extend(format!("\\x{b:02x}").into_bytes());
        }
    } else {
        out.extend_from_slice(bytes);
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: value.into(),
            create_revision: 2,
            mod_revision: 3,
            version: 1,
            lease: 0,
        }
    }

    #[test]
    fn get_prints_key_and_value_lines() {
        let r = pb::RangeResponse {
            kvs: vec![kv("a", "1"), kv("b", "")],
            count: 2,
            ..Default::default()
        };
        assert_eq!(get(&r, false, false), b"a\n1\nb\n\n");
        assert_eq!(get(&r, false, true), b"1\n\n");
        assert_eq!(get(&r, true, false), b"\\x61\n\\x31\n\\x62\n\n");
    }

    #[test]
    fn put_prints_ok_then_previous_pair() {
        let r = pb::PutResponse {
            prev_kv: Some(kv("k", "old")),
            ..Default::default()
        };
        assert_eq!(put(&r, false), b"OK\nk\nold\n");
        assert_eq!(put(&pb::PutResponse::default(), false), b"OK\n");
    }

    #[test]
    fn del_prints_count_then_deleted_pairs() {
        let r = pb::DeleteRangeResponse {
            deleted: 1,
            prev_kvs: vec![kv("k", "v")],
            ..Default::default()
        };
        assert_eq!(del(&r, false), b"1\nk\nv\n");
    }

    #[test]
    fn txn_prints_outcome_then_each_response_after_a_blank_line() {
        use pb::response_op::Response;
        let r = pb::TxnResponse {
            succeeded: false,
            responses: vec![
                pb::ResponseOp {
                    response: Some(Response::ResponsePut(pb::PutResponse::default())),
                },
                pb::ResponseOp {
                    response: Some(Response::ResponseRange(pb::RangeResponse {
                        kvs: vec![kv("a", "1")],
                        ..Default::default()
                    })),
                },
            ],
            ..Default::default()
        };
        assert_eq!(txn(&r, false), b"FAILURE\n\nOK\n\na\n1\n");
    }

    #[test]
    fn member_list_rows_use_unpadded_hex_ids() {
        let r = pb::MemberListResponse {
            members: vec![pb::Member {
                id: 0x0abc,
                name: String::new(),
                peer_ur_ls: vec!["http://a:2380".into(), "http://b:2380".into()],
                client_ur_ls: vec![],
                is_learner: true,
            }],
            ..Default::default()
        };
        assert_eq!(
            member_list(&r),
            "abc, unstarted, , http://a:2380,http://b:2380, , true\n"
        );
    }
}
