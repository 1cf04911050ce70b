//! A real cairn process driven by the `etcd-client` crate (a tonic-based etcd v3 client
//! nobody here wrote): KV operations, revisions, error codes and messages, and durability
//! across SIGKILL.

#![cfg(not(madsim))]

use cairn_tests::{Kind, Server};
use etcd_client::{
    Client, Compare, CompareOp, DeleteOptions, GetOptions, PutOptions, SortOrder, SortTarget, Txn,
    TxnOp,
};

fn runtime() -> real_tokio::runtime::Runtime {
    real_tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn connect(server: &Server) -> Client {
    Client::connect([server.endpoint()], None)
        .await
        .expect("connect")
}

fn grpc_error(error: etcd_client::Error) -> (tonic_code::Code, String) {
    match error {
        etcd_client::Error::GRpcStatus(status) => (
            tonic_code::from(status.code()),
            status.message().to_string(),
        ),
        other => panic!("expected a gRPC status, got {other:?}"),
    }
}

/// The few status codes the tests compare, independent of the tonic version etcd-client uses.
mod tonic_code {
    #[derive(Debug, PartialEq, Eq)]
    pub enum Code {
        InvalidArgument,
        OutOfRange,
        NotFound,
        Other(String),
    }

    pub fn from(code: impl std::fmt::Debug) -> Code {
        match format!("{code:?}").as_str() {
            "InvalidArgument" => Code::InvalidArgument,
            "OutOfRange" => Code::OutOfRange,
            "NotFound" => Code::NotFound,
            other => Code::Other(other.to_string()),
        }
    }
}

use tonic_code::Code;

#[test]
fn kv_operations_follow_etcd_semantics() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Kind::Cairn, dir.path());
    runtime().block_on(async {
        let mut client = connect(&server).await;
        let first = client.put("k1", "v1", None).await.unwrap();
        let rev1 = first.header().unwrap().revision();
        assert_eq!(
            rev1, 2,
            "an empty store is at revision 1; the first put makes 2"
        );
        client.put("k2", "v2", None).await.unwrap();
        let prev = client
            .put("k1", "v1b", Some(PutOptions::new().with_prev_key()))
            .await
            .unwrap();
        assert_eq!(prev.prev_key().unwrap().value(), b"v1");

        let got = client.get("k1", None).await.unwrap();
        let kv = &got.kvs()[0];
        assert_eq!(
            (
                kv.value(),
                kv.version(),
                kv.create_revision(),
                kv.mod_revision()
            ),
            (&b"v1b"[..], 2, 2, 4)
        );

        let all = client
            .get("k", Some(GetOptions::new().with_prefix()))
            .await
            .unwrap();
        assert_eq!(all.count(), 2);
        let old = client
            .get("k1", Some(GetOptions::new().with_revision(rev1)))
            .await
            .unwrap();
        assert_eq!(old.kvs()[0].value(), b"v1");

        let sorted = client
            .get(
                "k",
                Some(
                    GetOptions::new()
                        .with_prefix()
                        .with_sort(SortTarget::Key, SortOrder::Descend)
                        .with_limit(1),
                ),
            )
            .await
            .unwrap();
        assert_eq!(sorted.kvs()[0].key(), b"k2");
        assert!(sorted.more());

        let txn = Txn::new()
            .when([Compare::value("k1", CompareOp::Equal, "v1b")])
            .and_then([TxnOp::put("k3", "v3", None), TxnOp::get("k3", None)])
            .or_else([TxnOp::put("k3", "wrong", None)]);
        let resp = client.txn(txn).await.unwrap();
        assert!(resp.succeeded());

        let deleted = client
            .delete(
                "k",
                Some(DeleteOptions::new().with_prefix().with_prev_key()),
            )
            .await
            .unwrap();
        assert_eq!(deleted.deleted(), 3);
        assert_eq!(deleted.prev_kvs().len(), 3);
        assert_eq!(
            client
                .get("k", Some(GetOptions::new().with_prefix()))
                .await
                .unwrap()
                .count(),
            0
        );
    });
}

#[test]
fn errors_carry_etcds_codes_and_messages_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Kind::Cairn, dir.path());
    runtime().block_on(async {
        let mut client = connect(&server).await;
        for i in 0..5 {
            client.put("key", format!("v{i}"), None).await.unwrap();
        }
        let current = client
            .get("key", None)
            .await
            .unwrap()
            .header()
            .unwrap()
            .revision();
        client.compact(current - 1, None).await.unwrap();

        let compacted = client
            .get("key", Some(GetOptions::new().with_revision(current - 2)))
            .await
            .unwrap_err();
        assert_eq!(
            grpc_error(compacted),
            (
                Code::OutOfRange,
                "etcdserver: mvcc: required revision has been compacted".into()
            )
        );
        let future = client
            .get("key", Some(GetOptions::new().with_revision(current + 10)))
            .await
            .unwrap_err();
        assert_eq!(
            grpc_error(future),
            (
                Code::OutOfRange,
                "etcdserver: mvcc: required revision is a future revision".into()
            )
        );
        let again = client.compact(current - 2, None).await.unwrap_err();
        assert_eq!(
            grpc_error(again).1,
            "etcdserver: mvcc: required revision has been compacted"
        );

        let empty = client.put("", "v", None).await.unwrap_err();
        assert_eq!(
            grpc_error(empty),
            (
                Code::InvalidArgument,
                "etcdserver: key is not provided".into()
            )
        );
        let lease = client
            .put("x", "v", Some(PutOptions::new().with_lease(99)))
            .await
            .unwrap_err();
        assert_eq!(
            grpc_error(lease),
            (
                Code::NotFound,
                "etcdserver: requested lease not found".into()
            )
        );

        let duplicate =
            Txn::new().and_then([TxnOp::put("d", "1", None), TxnOp::put("d", "2", None)]);
        let err = client.txn(duplicate).await.unwrap_err();
        assert_eq!(
            grpc_error(err),
            (
                Code::InvalidArgument,
                "etcdserver: duplicate key given in txn request".into()
            )
        );
        let many: Vec<TxnOp> = (0..129)
            .map(|i| TxnOp::put(format!("m{i}"), "v", None))
            .collect();
        let err = client.txn(Txn::new().and_then(many)).await.unwrap_err();
        assert_eq!(
            grpc_error(err),
            (
                Code::InvalidArgument,
                "etcdserver: too many operations in txn request".into()
            )
        );
        let big = client
            .put("big", vec![b'x'; 1_600_000], None)
            .await
            .unwrap_err();
        assert_eq!(
            grpc_error(big),
            (
                Code::InvalidArgument,
                "etcdserver: request is too large".into()
            )
        );

        let after = client
            .get("", Some(GetOptions::new().with_all_keys()))
            .await
            .unwrap();
        assert_eq!(
            after.header().unwrap().revision(),
            current,
            "failed requests changed the store"
        );
        assert_eq!(after.count(), 1);
    });
}

#[test]
fn acknowledged_puts_survive_sigkill_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(Kind::Cairn, dir.path());
    let rt = runtime();
    let acknowledged = rt.block_on(async {
        let mut client = connect(&server).await;
        let mut acknowledged = Vec::new();
        for i in 0..200 {
            client
                .put(format!("durable/{i:03}"), format!("value-{i}"), None)
                .await
                .unwrap();
            acknowledged.push(i);
        }
        acknowledged
    });
    server.kill9();
    server.restart();
    rt.block_on(async {
        let mut client = connect(&server).await;
        let got = client
            .get("durable/", Some(GetOptions::new().with_prefix()))
            .await
            .unwrap();
        assert_eq!(got.count() as usize, acknowledged.len());
        for (kv, i) in got.kvs().iter().zip(&acknowledged) {
            assert_eq!(kv.value_str().unwrap(), format!("value-{i}"));
        }
        let next = client.put("after-restart", "x", None).await.unwrap();
        assert_eq!(
            next.header().unwrap().revision(),
            202,
            "revisions continue after restart"
        );
    });
}

#[test]
fn sigterm_shuts_down_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(Kind::Cairn, dir.path());
    assert_eq!(server.terminate(), Some(0));
}
