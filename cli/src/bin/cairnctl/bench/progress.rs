//! The progress indicator on stderr while a benchmark runs (etcd's tool draws a
//! `cheggaaa/pb` bar). On a terminal the bar is redrawn in place every
//! [`TERMINAL_REDRAW_MS`]; into a file or pipe a plain line is written every
//! [`LOG_LINE_INTERVAL_MS`] so that logs stay short. Requests are counted with one atomic
//! add each, so the indicator costs the measured path nothing measurable.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How often the bar is redrawn on a terminal.
const TERMINAL_REDRAW_MS: u64 = 200;
/// How often a progress line is written when stderr is not a terminal.
const LOG_LINE_INTERVAL_MS: u64 = 1000;
/// Width of the bar, in characters.
const BAR_WIDTH_CHARS: u64 = 40;

/// Counts finished requests and shows them on stderr until [`Progress::finish`].
pub struct Progress {
    done: Arc<AtomicU64>,
    drawer: Option<JoinHandle<()>>,
    total: u64,
    label: String,
    started: Instant,
    terminal: bool,
}

impl Progress {
    /// Starts showing progress towards `total` requests, labelled `label`.
    pub fn start(label: &str, total: u64) -> Progress {
        let done = Arc::new(AtomicU64::new(0));
        let terminal = std::io::stderr().is_terminal();
        let started = Instant::now();
        let drawer = {
            let (done, label) = (done.clone(), label.to_string());
            let every = Duration::from_millis(match terminal {
                true => TERMINAL_REDRAW_MS,
                false => LOG_LINE_INTERVAL_MS,
            });
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    let line = render(&label, done.load(Ordering::Relaxed), total, started);
                    draw(&line, terminal);
                }
            })
        };
        Progress {
            done,
            drawer: Some(drawer),
            total,
            label: label.to_string(),
            started,
            terminal,
        }
    }

    /// The counter that workers increment once per finished request.
    pub fn counter(&self) -> Arc<AtomicU64> {
        self.done.clone()
    }

    /// Stops the indicator and draws its final state.
    pub fn finish(mut self) {
        self.stop();
        let line = render(
            &self.label,
            self.done.load(Ordering::Relaxed),
            self.total,
            self.started,
        );
        draw(&line, self.terminal);
        if self.terminal {
            let _ignored = std::io::stderr().write_all(b"\n");
        }
    }

    fn stop(&mut self) {
        if let Some(drawer) = self.drawer.take() {
            drawer.abort();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop();
    }
}

fn draw(line: &str, terminal: bool) {
    let text = match terminal {
        true => format!("\r{line}"),
        false => format!("{line}\n"),
    };
    let _ignored = std::io::stderr().write_all(text.as_bytes());
}

/// `label  1234 / 10000 [#####-----]  12.34% 1.2s`.
pub fn render(label: &str, done: u64, total: u64, started: Instant) -> String {
    let done = done.min(total);
    let filled = match total {
        0 => BAR_WIDTH_CHARS,
        _ => done * BAR_WIDTH_CHARS / total,
    };
    let percent = match total {
        0 => 100.0,
        _ => done as f64 * 100.0 / total as f64,
    };
    format!(
        "{label} {done} / {total} [{}{}] {percent:6.2}% {:.1}s",
        "#".repeat(filled as usize),
        "-".repeat((BAR_WIDTH_CHARS - filled) as usize),
        started.elapsed().as_secs_f64()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bar_fills_in_proportion() {
        let line = render("put", 25, 100, Instant::now());
        assert!(
            line.starts_with(&format!(
                "put 25 / 100 [{}{}]  25.00% ",
                "#".repeat(10),
                "-".repeat(30)
            )),
            "{line}"
        );
        assert!(render("x", 5, 0, Instant::now()).contains("100.00%"));
    }
}
