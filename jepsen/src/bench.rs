//! Timing the checker over a corpus directory (`cairn-jepsen bench`).
//!
//! Every history is parsed once (timed apart, as porcupine's own benchmark excludes parsing),
//! then checked `iterations` times. When the directory has a `verdicts.tsv` its list of files
//! is used and the verdicts compared; when it has porcupine's `porcupine-timings.tsv`, the
//! total is set beside porcupine's. Files are taken in sorted order so runs compare.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::format::{self, LoadError};
use crate::history::History;
use crate::linearizability::{Budget, Verdict, check};
use crate::model::{ModelError, ModelKind};

const HISTORY_EXTENSIONS: [&str; 3] = ["log", "edn", "jsonl"];
const SLOWEST_SHOWN: usize = 5;

/// The timing of one history.
#[derive(Clone, Debug)]
pub struct BenchFile {
    /// Path relative to the corpus directory.
    pub name: String,
    /// Number of ops.
    pub ops: usize,
    /// The checker's verdict.
    pub verdict: Verdict,
    /// The verdict `verdicts.tsv` expects, if listed.
    pub expected: Option<Verdict>,
    /// Mean check time.
    pub check_mean: Duration,
}

/// The timing of a corpus.
#[derive(Clone, Debug)]
pub struct BenchReport {
    /// The corpus directory.
    pub dir: PathBuf,
    /// Checks per file.
    pub iterations: u32,
    /// The files, in order.
    pub files: Vec<BenchFile>,
    /// Parsing all files once.
    pub parse_total: Duration,
    /// Porcupine's total check time for the same files, from `porcupine-timings.tsv`.
    pub porcupine_total: Option<Duration>,
}

impl BenchReport {
    /// Mean time to check every file once.
    pub fn check_total_mean(&self) -> Duration {
        self.files.iter().map(|f| f.check_mean).sum()
    }

    /// Files whose verdict differs from `verdicts.tsv`.
    pub fn disagreements(&self) -> Vec<&BenchFile> {
        self.files
            .iter()
            .filter(|f| f.expected.is_some_and(|e| e != f.verdict))
            .collect()
    }
}

/// Why a bench could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The directory or a listing in it could not be read.
    #[error("{path}: {source}")]
    Io {
        /// What was being read.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// A history is malformed.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// A history does not fit the model.
    #[error("{file}: {source}")]
    Model {
        /// The history.
        file: String,
        /// The error.
        source: ModelError,
    },
}

/// Parses every history of `dir` once and checks each `iterations` times.
pub fn run(
    dir: &Path,
    iterations: u32,
    model: ModelKind,
    budget: &Budget,
) -> Result<BenchReport, BenchError> {
    let expected = read_verdicts(dir)?;
    let names = match &expected {
        Some(list) => list.iter().map(|(name, _)| name.clone()).collect(),
        None => history_files(dir)?,
    };
    let parse_start = Instant::now();
    let histories = names
        .iter()
        .map(|name| format::load(&dir.join(name), None))
        .collect::<Result<Vec<History>, LoadError>>()?;
    let parse_total = parse_start.elapsed();
    let mut files = Vec::with_capacity(names.len());
    for (name, history) in names.iter().zip(&histories) {
        let (verdict, check_mean) = time_checks(name, history, iterations, model, budget)?;
        let expected = expected
            .as_ref()
            .and_then(|list| list.iter().find(|(n, _)| n == name))
            .map(|(_, v)| *v);
        files.push(BenchFile {
            name: name.clone(),
            ops: history.ops.len(),
            verdict,
            expected,
            check_mean,
        });
    }
    let porcupine_total = read_porcupine_total(dir)?;
    Ok(BenchReport {
        dir: dir.to_owned(),
        iterations,
        files,
        parse_total,
        porcupine_total,
    })
}

fn time_checks(
    name: &str,
    history: &History,
    iterations: u32,
    model: ModelKind,
    budget: &Budget,
) -> Result<(Verdict, Duration), BenchError> {
    let iterations = iterations.max(1);
    let mut verdict = Verdict::Unknown;
    let start = Instant::now();
    for _ in 0..iterations {
        let result = check(history, model, budget).map_err(|source| BenchError::Model {
            file: name.to_owned(),
            source,
        })?;
        verdict = result.verdict;
    }
    Ok((verdict, start.elapsed() / iterations))
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> BenchError + '_ {
    move |source| BenchError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// History files under `dir` (recursively), relative, sorted.
fn history_files(dir: &Path) -> Result<Vec<String>, BenchError> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).map_err(io_error(&current))? {
            let path = entry.map_err(io_error(&current))?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path
                .extension()
                .is_some_and(|e| HISTORY_EXTENSIONS.iter().any(|h| e == *h))
            {
                let relative = path.strip_prefix(dir).unwrap_or(&path);
                found.push(relative.display().to_string());
            }
        }
    }
    found.sort();
    Ok(found)
}

/// `verdicts.tsv` (`file<TAB>linearizable|violation`), if present.
fn read_verdicts(dir: &Path) -> Result<Option<Vec<(String, Verdict)>>, BenchError> {
    let path = dir.join("verdicts.tsv");
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(io_error(&path))?;
    let list = text
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .filter_map(|(file, verdict)| {
            let verdict = match verdict.trim() {
                "linearizable" => Verdict::Linearizable,
                "violation" => Verdict::Violation,
                _ => return None,
            };
            Some((file.to_owned(), verdict))
        })
        .collect();
    Ok(Some(list))
}

/// The sum of porcupine's `porcupine_check_ms_gobench` column, if the file is there.
fn read_porcupine_total(dir: &Path) -> Result<Option<Duration>, BenchError> {
    let path = dir.join("porcupine-timings.tsv");
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(io_error(&path))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split('\t').collect();
    let Some(column) = header
        .iter()
        .position(|h| *h == "porcupine_check_ms_gobench")
    else {
        return Ok(None);
    };
    let total_ms: f64 = lines
        .filter_map(|line| line.split('\t').nth(column))
        .filter_map(|ms| ms.trim().parse::<f64>().ok())
        .sum();
    Ok(Some(Duration::from_secs_f64(total_ms / 1000.0)))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.files.len().max(1) as u32;
        let total = self.check_total_mean();
        writeln!(
            f,
            "corpus: {} ({} files, {} checks each)",
            self.dir.display(),
            self.files.len(),
            self.iterations
        )?;
        if self.files.iter().any(|file| file.expected.is_some()) {
            let agree = self.files.len() - self.disagreements().len();
            writeln!(
                f,
                "verdicts: {agree}/{} agree with verdicts.tsv",
                self.files.len()
            )?;
            for file in self.disagreements() {
                writeln!(
                    f,
                    "  DISAGREE {}: got {}, expected {:?}",
                    file.name, file.verdict, file.expected
                )?;
            }
        }
        writeln!(
            f,
            "parse: {:.3} ms for all files (once)",
            ms(self.parse_total)
        )?;
        writeln!(
            f,
            "check: total {:.3} ms per pass over the corpus, per-file mean {:.4} ms",
            ms(total),
            ms(total / n)
        )?;
        let mut slowest: Vec<&BenchFile> = self.files.iter().collect();
        slowest.sort_by(|a, b| {
            b.check_mean
                .cmp(&a.check_mean)
                .then_with(|| a.name.cmp(&b.name))
        });
        let shown: Vec<String> = slowest
            .iter()
            .take(SLOWEST_SHOWN)
            .map(|file| format!("{} {:.3} ms", file.name, ms(file.check_mean)))
            .collect();
        writeln!(f, "slowest: {}", shown.join(", "))?;
        if let Some(porcupine) = self.porcupine_total {
            let ratio = porcupine.as_secs_f64() / total.as_secs_f64().max(1e-9);
            writeln!(
                f,
                "porcupine: {:.1} ms (porcupine-timings.tsv, go bench); cairn-jepsen is {ratio:.1}x porcupine's speed",
                ms(porcupine)
            )?;
        }
        Ok(())
    }
}
