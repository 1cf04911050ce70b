//! The external oracles: every history of shared/corpus/jepsen-etcd (porcupine's verdicts) and
//! shared/corpus/knossos (Knossos' verdicts) must get the same verdict from cairn's checker.
//! A missing corpus fails these tests: it never lets them pass silently.

use std::path::{Path, PathBuf};

use cairn_jepsen::{Budget, Format, ModelKind, Verdict, check};

fn corpus(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/corpus")
        .join(name);
    assert!(
        dir.is_dir(),
        "corpus directory {} is missing: these tests need the shared corpus beside the repo \
         (shared/corpus/{name}, i.e. ../../shared/corpus relative to jepsen/)",
        dir.display()
    );
    dir
}

/// `(relative path, expected verdict)` from `verdicts.tsv`.
fn verdicts(dir: &Path) -> Vec<(String, Verdict)> {
    let path = dir.join("verdicts.tsv");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let (file, verdict) = line
                .split_once('\t')
                .unwrap_or_else(|| panic!("{}: bad line {line:?}", path.display()));
            let verdict = match verdict.trim() {
                "linearizable" => Verdict::Linearizable,
                "violation" => Verdict::Violation,
                other => panic!("{}: unknown verdict {other:?}", path.display()),
            };
            (file.to_owned(), verdict)
        })
        .collect()
}

/// Checks every file listed in the corpus's verdicts; returns the disagreements.
fn disagreements(dir: &Path, format: Format) -> (usize, Vec<String>) {
    let expected = verdicts(dir);
    let mut wrong = Vec::new();
    for (file, verdict) in &expected {
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let history = match format.parse(file, &text) {
            Ok(h) => h,
            Err(e) => {
                wrong.push(format!("{file}: parse error {e}"));
                continue;
            }
        };
        let result = check(&history, ModelKind::Register, &Budget::default())
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        if result.verdict != *verdict {
            wrong.push(format!(
                "{file}: expected {verdict}, got {}",
                result.verdict
            ));
        }
    }
    (expected.len(), wrong)
}

#[test]
fn jepsen_etcd_corpus_agrees_with_porcupine_on_all_102_histories() {
    let (checked, wrong) = disagreements(&corpus("jepsen-etcd"), Format::PorcupineEtcd);
    assert_eq!(checked, 102, "verdicts.tsv should list 102 histories");
    assert!(
        wrong.is_empty(),
        "{} of {checked} disagree:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn knossos_corpus_agrees_with_knossos_on_all_120_histories() {
    let (checked, wrong) = disagreements(&corpus("knossos"), Format::KnossosEdn);
    assert_eq!(checked, 120, "verdicts.tsv should list 120 histories");
    assert!(
        wrong.is_empty(),
        "{} of {checked} disagree:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn every_corpus_history_is_detected_in_its_format() {
    for (name, format) in [
        ("jepsen-etcd", Format::PorcupineEtcd),
        ("knossos", Format::KnossosEdn),
    ] {
        let dir = corpus(name);
        for (file, _) in verdicts(&dir) {
            let path = dir.join(&file);
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            assert_eq!(Format::detect(&path, &text), format, "{file}");
        }
    }
}
