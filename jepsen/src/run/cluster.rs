//! The `cairn` processes of a run: one per member on 127.0.0.1, each with its own data dir
//! and log file under the run dir, its peer URL advertised at its proxy port.

use std::fs::OpenOptions;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::proxy::ProcOwners;

/// The ports of one member.
#[derive(Clone, Copy, Debug)]
pub struct Ports {
    /// Client URL port (what the workload dials).
    pub client: u16,
    /// The real peer listener.
    pub peer: u16,
    /// The proxy in front of it (the advertised peer URL).
    pub proxy: u16,
}

impl Ports {
    /// The client endpoint `127.0.0.1:port`.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.client)
    }

    /// The real peer listener's address.
    pub fn peer_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.peer))
    }

    /// The proxy's address.
    pub fn proxy_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.proxy))
    }
}

struct Member {
    name: String,
    ports: Ports,
    data_dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    paused: bool,
}

/// The member processes.
pub struct Processes {
    binary: PathBuf,
    initial_cluster: String,
    members: Vec<Member>,
    owners: ProcOwners,
}

impl Processes {
    /// Plans members with `ports` under `dir` (nothing started yet).
    pub fn plan(binary: &Path, dir: &Path, ports: &[Ports], owners: ProcOwners) -> Processes {
        let members: Vec<Member> = ports
            .iter()
            .enumerate()
            .map(|(i, ports)| Member {
                name: format!("n{i}"),
                ports: *ports,
                data_dir: dir.join(format!("n{i}.data")),
                log: dir.join(format!("n{i}.log")),
                child: None,
                paused: false,
            })
            .collect();
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.ports.proxy))
            .collect::<Vec<_>>()
            .join(",");
        Processes {
            binary: binary.to_path_buf(),
            initial_cluster,
            members,
            owners,
        }
    }

    /// How many members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The client endpoints, in member order.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| m.ports.endpoint()).collect()
    }

    /// Whether member `i` runs (it may be paused).
    pub fn is_running(&self, i: usize) -> bool {
        self.members.get(i).is_some_and(|m| m.child.is_some())
    }

    /// Starts member `i` if it is not running.
    pub fn start(&mut self, i: usize) -> io::Result<()> {
        let Some(member) = self.members.get_mut(i) else {
            return Ok(());
        };
        if member.child.is_some() {
            return Ok(());
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&member.log)?;
        let client = format!("http://127.0.0.1:{}", member.ports.client);
        let child = Command::new(&self.binary)
            .arg("--name")
            .arg(&member.name)
            .arg("--data-dir")
            .arg(&member.data_dir)
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .arg("--listen-peer-urls")
            .arg(format!("http://127.0.0.1:{}", member.ports.peer))
            .arg("--initial-advertise-peer-urls")
            .arg(format!("http://127.0.0.1:{}", member.ports.proxy))
            .args(["--initial-cluster", &self.initial_cluster])
            .args(["--initial-cluster-token", "cairn-jepsen"])
            .args(["--initial-cluster-state", "new"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", self.binary.display())))?;
        self.owners.set(i, Some(child.id()));
        member.child = Some(child);
        member.paused = false;
        Ok(())
    }

    /// SIGKILLs member `i` and reaps it.
    pub fn kill(&mut self, i: usize) {
        if let Some(member) = self.members.get_mut(i)
            && let Some(mut child) = member.child.take()
        {
            let _ = child.kill();
            let _ = child.wait();
            member.paused = false;
            self.owners.set(i, None);
        }
    }

    /// SIGSTOPs member `i`.
    pub fn pause(&mut self, i: usize) {
        self.signal(i, "-STOP", true);
    }

    /// SIGCONTs member `i`.
    pub fn resume(&mut self, i: usize) {
        self.signal(i, "-CONT", false);
    }

    fn signal(&mut self, i: usize, signal: &str, paused: bool) {
        if let Some(member) = self.members.get_mut(i)
            && let Some(child) = &member.child
        {
            let sent = Command::new("kill")
                .arg(signal)
                .arg(child.id().to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            if sent.is_ok_and(|s| s.success()) {
                member.paused = paused;
            }
        }
    }

    /// Resumes every paused member and starts every stopped one.
    pub fn heal(&mut self) -> io::Result<()> {
        for i in 0..self.members.len() {
            if self.members[i].paused {
                self.resume(i);
            }
            self.start(i)?;
        }
        Ok(())
    }

    /// A member process that exited by itself (not killed by the nemesis): its index and
    /// exit status. It counts as stopped from then on ([`Processes::heal`] starts it).
    pub fn crashed(&mut self) -> Option<(usize, String)> {
        let (i, status) = self.members.iter_mut().enumerate().find_map(|(i, m)| {
            let child = m.child.as_mut()?;
            match child.try_wait() {
                Ok(Some(status)) => Some((i, status.to_string())),
                _ => None,
            }
        })?;
        self.members[i].child = None;
        self.members[i].paused = false;
        self.owners.set(i, None);
        Some((i, status))
    }

    /// The log file of member `i`.
    pub fn log(&self, i: usize) -> Option<&Path> {
        self.members.get(i).map(|m| m.log.as_path())
    }

    /// SIGKILLs every member.
    pub fn kill_all(&mut self) {
        for i in 0..self.members.len() {
            if self.members[i].paused {
                self.resume(i);
            }
            self.kill(i);
        }
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        self.kill_all();
    }
}
