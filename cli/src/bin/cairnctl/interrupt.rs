//! etcdctl's `signal.Notify(sigc, syscall.SIGINT, syscall.SIGTERM)` for the commands that
//! run until interrupted (`elect`, `lock`): once an [`Interrupt`] exists, SIGINT and SIGTERM
//! no longer end the process; they complete [`Interrupt::wait`] instead. Under madsim only
//! the simulated ctrl-c exists.

/// The interrupt signals of the process, caught.
pub struct Interrupt {
    #[cfg(not(madsim))]
    signals: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Interrupt {
    /// Starts catching SIGINT and SIGTERM.
    pub fn catch() -> Interrupt {
        #[cfg(not(madsim))]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let signals = signal(SignalKind::interrupt())
                .and_then(|int| Ok((int, signal(SignalKind::terminate())?)))
                .ok();
            Interrupt { signals }
        }
        #[cfg(madsim)]
        Interrupt {}
    }

    /// Completes at the first SIGINT or SIGTERM caught (never, if they could not be).
    pub async fn wait(&mut self) {
        #[cfg(not(madsim))]
        match self.signals.as_mut() {
            Some((int, term)) => {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            }
            None => std::future::pending().await,
        }
        #[cfg(madsim)]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
