//! The `cairn-jepsen check` contract, run as a real process: verdict lines on stdout, exit
//! codes 0/1/2, the HTML report of a violation, file:line errors for malformed input.

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_cairn-jepsen");

/// A register history in the issue's JSONL format: write 1, write 2, then a read of 1 that
/// starts after write 2 completed: a stale read, doctored into an otherwise clean history.
const STALE_READ: &str = r#"{"process":0,"type":"invoke","f":"write","key":"x","value":"1","time":100}
{"process":0,"type":"ok","f":"write","key":"x","value":"1","time":200}
{"process":1,"type":"invoke","f":"read","key":"x","value":null,"time":250}
{"process":1,"type":"ok","f":"read","key":"x","value":"1","time":260}
{"process":0,"type":"invoke","f":"write","key":"x","value":"2","time":300}
{"process":0,"type":"ok","f":"write","key":"x","value":"2","time":400}
{"process":1,"type":"invoke","f":"read","key":"x","value":null,"time":500}
{"process":1,"type":"ok","f":"read","key":"x","value":"1","time":600}
{"process":2,"type":"invoke","f":"read","key":"y","value":null,"time":610}
{"process":2,"type":"ok","f":"read","key":"y","value":null,"time":620}
"#;

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("run cairn-jepsen")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write(dir: &Path, name: &str, contents: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write test history");
    path.display().to_string()
}

#[test]
fn stale_read_is_a_violation_with_an_html_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(dir.path(), "stale.jsonl", STALE_READ);
    let html_dir = dir.path().join("html");
    let out = run(&["check", "--html", &html_dir.display().to_string(), &file]);
    assert_eq!(out.status.code(), Some(1), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("{file}\tviolation\n"));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("violation on key \"x\""), "{stderr}");
    assert!(
        stderr.contains("op 3 (process 1): read x -> \"1\", lines 7-8"),
        "{stderr}"
    );
    let page = std::fs::read_to_string(html_dir.join("stale.jsonl.html")).expect("HTML report");
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(
        page.contains("<svg") && page.contains("class=\"bad\""),
        "no highlighted op"
    );
    assert!(page.contains("Longest linearizable prefix"));
    for external in ["<script", "src=", "href=", "<link"] {
        assert!(
            !page.contains(external),
            "the page must be self-contained: {external}"
        );
    }
}

#[test]
fn linearizable_history_exits_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fixed = STALE_READ.replace(r#""value":"1","time":600"#, r#""value":"2","time":600"#);
    let file = write(dir.path(), "fine.jsonl", &fixed);
    let out = run(&["check", &file]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("{file}\tlinearizable\n"));
}

#[test]
fn malformed_file_exits_two_with_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = "{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"value\":\"1\"}\n{\"process\":0,\"type\":\"ok\",\"f\":\"write\"\n";
    let file = write(dir.path(), "bad.jsonl", bad);
    let good = write(dir.path(), "good.jsonl", "");
    let out = run(&["check", &good, &file]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(text(&out.stdout), format!("{good}\tlinearizable\n"));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with(&format!("{file}:2: expected one JSON object")),
        "{stderr}"
    );
}

#[test]
fn impossible_history_is_malformed_not_a_verdict() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log =
        "INFO  jepsen.util - 0\t:invoke\t:write\t1\nINFO  jepsen.util - 0\t:invoke\t:read\tnil\n";
    let file = write(dir.path(), "twice.log", log);
    let out = run(&["check", &file]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stdout).is_empty());
    assert!(
        text(&out.stderr).starts_with(&format!("{file}:2: process 0 invokes read")),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn append_under_the_register_model_is_rejected_and_kv_accepts_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let history = "{\"process\":0,\"type\":\"invoke\",\"f\":\"append\",\"key\":\"k\",\"value\":\"a\"}\n\
                   {\"process\":0,\"type\":\"ok\",\"f\":\"append\",\"key\":\"k\",\"value\":\"a\"}\n\
                   {\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"key\":\"k\",\"value\":null}\n\
                   {\"process\":0,\"type\":\"ok\",\"f\":\"read\",\"key\":\"k\",\"value\":\"a\"}\n";
    let file = write(dir.path(), "append.jsonl", history);
    let out = run(&["check", &file]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--model kv"),
        "{}",
        text(&out.stderr)
    );
    let out = run(&["check", "--model", "kv", "--format", "jsonl", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn missing_file_exits_two() {
    let out = run(&["check", "/nonexistent/history.jsonl"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("/nonexistent/history.jsonl"));
}

#[test]
fn exhausted_budget_prints_unknown_and_exits_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut lines = String::new();
    for p in 0..30 {
        lines.push_str(&format!(
            "{{\"process\":{p},\"type\":\"invoke\",\"f\":\"write\",\"value\":\"{p}\"}}\n"
        ));
    }
    for p in 0..30 {
        lines.push_str(&format!(
            "{{\"process\":{p},\"type\":\"ok\",\"f\":\"write\",\"value\":\"{p}\"}}\n"
        ));
    }
    lines.push_str("{\"process\":99,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}\n");
    lines.push_str("{\"process\":99,\"type\":\"ok\",\"f\":\"read\",\"value\":\"never\"}\n");
    let file = write(dir.path(), "hard.jsonl", &lines);
    let out = run(&["check", "--max-steps", "5000", &file]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("{file}\tunknown\n"));
    assert!(
        text(&out.stderr).contains("budget ran out"),
        "{}",
        text(&out.stderr)
    );
}
