//! The lease steps of an etcdctl 3.4 session against the reference etcd and against cairn:
//! stdout, stderr and exit code must be identical.
//!
//! Lease IDs differ between the servers (each derives them from its own member id and
//! clock), so a step may name a lease granted earlier as `{L1}`: each server's run captures
//! the ID its `lease grant` printed and substitutes its own. Outputs show each captured ID
//! as its name, ids/term as in `etcdctl_differential.rs`, and the remaining TTL of
//! `timetolive` as `N` (it depends on when each server's step ran; the `etcd-client` tests
//! pin its value).

#![cfg(not(madsim))]

use std::collections::BTreeMap;
use std::process::Output;

use cairn_tests::{Kind, Server, etcdctl};

/// One etcdctl invocation; `capture` names the lease its `lease grant` prints.
struct Step {
    args: Vec<&'static str>,
    capture: Option<&'static str>,
}

fn step(args: &[&'static str]) -> Step {
    Step {
        args: args.to_vec(),
        capture: None,
    }
}

fn grant(name: &'static str, ttl: &'static str) -> Step {
    Step {
        args: vec!["lease", "grant", ttl],
        capture: Some(name),
    }
}

fn scenario() -> Vec<Step> {
    vec![
        grant("{L1}", "100"),
        step(&["lease", "timetolive", "{L1}"]),
        step(&["lease", "timetolive", "{L1}", "-w", "json"]),
        step(&["lease", "list"]),
        step(&["lease", "list", "-w", "json"]),
        step(&["put", "--lease", "{L1}", "foo", "bar"]),
        step(&["put", "plain", "v"]),
        // One attached key only: etcd lists a lease's keys in Go map order.
        step(&["lease", "timetolive", "--keys", "{L1}"]),
        step(&["lease", "timetolive", "--keys", "{L1}", "-w", "json"]),
        step(&["put", "--lease", "{L1}", "foo2", "bar2"]),
        step(&["get", "foo", "-w", "json"]),
        step(&["lease", "keep-alive", "--once", "{L1}"]),
        grant("{L2}", "1"),
        step(&["lease", "revoke", "{L2}"]),
        step(&["lease", "revoke", "{L1}"]),
        step(&["get", "--prefix", ""]),
        step(&["get", "foo", "-w", "json"]),
        step(&["lease", "revoke", "{L1}"]),
        step(&["lease", "timetolive", "{L1}"]),
        step(&["lease", "timetolive", "{L1}", "-w", "json"]),
        step(&["lease", "keep-alive", "--once", "{L1}"]),
        step(&["lease", "list"]),
        step(&["put", "--lease", "1234", "k", "v"]),
        step(&["lease", "grant", "9000000001"]),
        step(&["lease", "grant", "100", "-w", "json"]),
        step(&["lease", "revoke", "zz"]),
    ]
}

/// One server's run: captured lease IDs by name, and each step's rendered output.
struct Run<'a> {
    server: &'a Server,
    leases: BTreeMap<&'static str, i64>,
}

impl Run<'_> {
    fn execute(&mut self, step: &Step) -> String {
        let args: Vec<String> = step.args.iter().map(|a| self.substitute(a)).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = etcdctl(&self.server.endpoint(), &args);
        if let Some(name) = step.capture {
            let id = granted_id(&output).unwrap_or_else(|| panic!("no lease ID in {output:?}"));
            self.leases.insert(name, id);
        }
        self.render(&output)
    }

    fn substitute(&self, arg: &str) -> String {
        match self.leases.get(arg) {
            Some(id) => format!("{id:x}"),
            None => arg.to_string(),
        }
    }

    fn render(&self, output: &Output) -> String {
        let text = |bytes: &[u8]| self.normalize(&String::from_utf8_lossy(bytes));
        format!(
            "exit {:?}\nstdout: {}\nstderr: {}",
            output.status.code(),
            text(&output.stdout),
            text(&output.stderr)
        )
    }

    fn normalize(&self, text: &str) -> String {
        let mut out: String = text
            .lines()
            .filter(|line| !line.starts_with("{\"level\":"))
            .map(|line| format!("{line}\n"))
            .collect();
        for (name, id) in &self.leases {
            out = out
                .replace(&format!("{id:016x}"), name)
                .replace(&id.to_string(), name);
        }
        for field in ["cluster_id", "member_id", "raft_term", "ID", "ttl"] {
            out = mask_after(&out, &format!("\"{field}\":"));
        }
        mask_after(&out, "remaining(")
    }
}

/// The ID in `lease 694d7a1c4fb5a40b granted with TTL(100s)`.
fn granted_id(output: &Output) -> Option<i64> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let hex = stdout.strip_prefix("lease ")?.split(' ').next()?;
    i64::from_str_radix(hex, 16).ok()
}

fn mask_after(text: &str, needle: &str) -> String {
    cairn_tests::mask_number_after(text, needle, "N")
}

#[test]
fn etcdctl_lease_session_answers_identically_on_etcd_and_cairn() {
    let etcd_dir = tempfile::tempdir().unwrap();
    let cairn_dir = tempfile::tempdir().unwrap();
    let etcd = Server::start(Kind::Etcd, etcd_dir.path());
    let cairn = Server::start(Kind::Cairn, cairn_dir.path());
    let mut want_run = Run {
        server: &etcd,
        leases: BTreeMap::new(),
    };
    let mut got_run = Run {
        server: &cairn,
        leases: BTreeMap::new(),
    };
    let steps = scenario();
    let mut differences = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let want = want_run.execute(step);
        let got = got_run.execute(step);
        if want != got {
            differences.push(format!(
                "step {i} {:?}\n--- etcd\n{want}\n--- cairn\n{got}",
                step.args
            ));
        }
    }
    assert!(
        differences.is_empty(),
        "{} of {} steps differ:\n\n{}",
        differences.len(),
        steps.len(),
        differences.join("\n\n")
    );
}
