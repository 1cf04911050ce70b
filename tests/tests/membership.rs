//! Runtime membership changes on real processes, following etcd's documented procedure:
//! add a learner, start it with `--initial-cluster-state existing`, promote it, remove an
//! original member; the cluster keeps one leader and serves from the new member.

#![cfg(not(madsim))]

use std::time::{Duration, Instant};

use cairn_tests::{Cluster, Kind, etcdctl};

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn member_id(list: &str, peer_url: &str) -> String {
    list.lines()
        .find(|l| l.contains(peer_url))
        .and_then(|l| l.split(',').next())
        .expect("member listed")
        .to_string()
}

fn eventually(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn learner_joins_is_promoted_and_an_original_member_is_removed() {
    let mut cluster = Cluster::start(Kind::Cairn, 3);
    let first = cluster.endpoints()[0].clone();
    assert_eq!(stdout(&etcdctl(&first, &["put", "before", "1"])), "OK\n");

    let new = cluster.add_member(true);
    let new_endpoint = cluster.members[new].endpoint();
    eventually("the learner has the data", || {
        stdout(&etcdctl(
            &new_endpoint,
            &["get", "before", "--consistency", "s", "--print-value-only"],
        )) == "1\n"
    });
    let list = stdout(&etcdctl(&first, &["member", "list"]));
    let new_id = member_id(&list, &cluster.members[new].peer_url());
    assert!(
        list.lines()
            .any(|l| l.starts_with(&new_id) && l.ends_with("true")),
        "not a learner: {list}"
    );

    let out = etcdctl(&first, &["member", "promote", &new_id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually("the promoted member serves linearizable writes", || {
        etcdctl(&new_endpoint, &["put", "from-new", "2"])
            .status
            .success()
    });

    let removed_id = member_id(&list, &cluster.members[1].peer_url());
    let out = etcdctl(&first, &["member", "remove", &removed_id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        cluster.members[1].wait_exit(Duration::from_secs(10)),
        Some(0),
        "a removed member shuts itself down"
    );
    eventually("the remaining members accept writes", || {
        etcdctl(&new_endpoint, &["put", "after-remove", "3"])
            .status
            .success()
    });
    let list = stdout(&etcdctl(&first, &["member", "list"]));
    assert_eq!(list.lines().count(), 3, "{list}");
    assert!(!list.contains(&removed_id), "{list}");
    for index in [0, 2, new] {
        let endpoint = cluster.members[index].endpoint();
        eventually("every remaining member has every write", || {
            stdout(&etcdctl(
                &endpoint,
                &["get", "after-remove", "--print-value-only"],
            )) == "3\n"
        });
    }
    let leaders = (0..3).filter_map(|_| cluster.leader()).count();
    assert!(leaders > 0, "no leader after the changes");
}

#[test]
fn membership_errors_answer_like_etcd() {
    let cluster = Cluster::start(Kind::Cairn, 3);
    let first = cluster.endpoints()[0].clone();
    let out = etcdctl(&first, &["member", "remove", "1234"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr)
            .trim_end()
            .lines()
            .last(),
        Some("Error: etcdserver: member not found")
    );
    let existing = cluster.members[1].peer_url();
    let out = etcdctl(&first, &["member", "add", "dup", "--peer-urls", &existing]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("etcdserver: Peer URLs already exists"));
    let list = stdout(&etcdctl(&first, &["member", "list"]));
    let voter = member_id(&list, &existing);
    let out = etcdctl(&first, &["member", "promote", &voter]);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("etcdserver: can only promote a learner member")
    );
}

#[test]
fn move_leader_hands_leadership_to_the_named_member() {
    let cluster = Cluster::start(Kind::Cairn, 3);
    let leader = cluster.leader().expect("a leader");
    let target = (leader + 1) % 3;
    let list = stdout(&etcdctl(
        &cluster.members[0].endpoint(),
        &["member", "list"],
    ));
    let target_id = member_id(&list, &cluster.members[target].peer_url());
    let out = etcdctl(
        &cluster.members[leader].endpoint(),
        &["move-leader", &target_id],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout(&out).starts_with("Leadership transferred from "),
        "{}",
        stdout(&out)
    );
    eventually("the target leads", || cluster.leader() == Some(target));
}
