//! Endpoints as users write them: etcdctl 3.4 (grpc-go) sends an endpoint given with a scheme
//! as the HTTP/2 `:authority` (`http://127.0.0.1:2379`); cairn must accept it as etcd does.

#![cfg(not(madsim))]

use cairn_tests::{Kind, Server, etcdctl, mask_number_after};

fn session(server: &Server) -> Vec<String> {
    let url = format!("http://{}", server.endpoint());
    let steps: [&[&str]; 4] = [
        &["put", "scheme", "ok"],
        &["get", "scheme"],
        &["get", "s", "--prefix", "--keys-only"],
        &["del", "scheme"],
    ];
    steps
        .iter()
        .map(|args| {
            let out = etcdctl(&url, args);
            let text = format!(
                "{}{}exit {:?}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                out.status.code()
            );
            mask_number_after(&text, "\"revision\":", "R")
        })
        .collect()
}

#[test]
fn etcdctl_with_an_http_url_endpoint_works_as_against_etcd() {
    let etcd_dir = tempfile::tempdir().unwrap();
    let cairn_dir = tempfile::tempdir().unwrap();
    let etcd = session(&Server::start(Kind::Etcd, etcd_dir.path()));
    let cairn = session(&Server::start(Kind::Cairn, cairn_dir.path()));
    assert_eq!(cairn, etcd);
    assert!(cairn[1].starts_with("scheme\nok\n"), "{cairn:?}");
}
