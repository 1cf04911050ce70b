//! `snapshot save`, `snapshot status` and `snapshot restore` (etcdctl's
//! `snapshot_command.go` over clientv3's `snapshot.v3Manager`).
//!
//! `save` downloads `Maintenance.Snapshot` from exactly one endpoint into `<file>.part`,
//! checks the SHA-256 trailer every snapshot (etcd's and cairn's) ends with, fsyncs, and
//! renames it into place, logging zap lines to stderr as etcdctl does. Like etcdctl it
//! has no deadline unless `--command-timeout` is given.
//!
//! `status` and `restore` read cairn's snapshot format (`cairn_core::snapshot`), not etcd's
//! bolt files. `status`'s hash is CRC-32C over the snapshot's records
//! (`cairn_core::snapshot::status`), the analogue of etcd's hash over bolt buckets, so it
//! differs from etcd's for the same data. `restore` builds a new member's data dir in a
//! temporary directory beside the target and renames it into place only once complete,
//! so a refused or failed restore leaves nothing behind (etcdctl leaves a partial dir).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::console::Console;
use crate::dispatch::Invocation;
use crate::exit::{self, CliError};
use crate::go_log;
use crate::output::Printer;
use crate::session::{self, Env, Session};

/// Bytes of the SHA-256 trailer.
const SHA256_BYTES: u64 = 32;
/// etcd's `hasChecksum`: a snapshot is a multiple of 512 bytes plus the trailer.
const ALIGN_BYTES: u64 = 512;

fn caller(line: u32) -> String {
    format!("snapshot/v3_snapshot.go:{line}")
}

/// Runs `snapshot save <file>`.
pub async fn save(
    invocation: &mut Invocation,
    env: &Env,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    let [path] = invocation.args.as_slice() else {
        return Err(CliError::bad_args("snapshot save expects one argument"));
    };
    let path = path.clone();
    let timed = invocation.values.changed("command-timeout");
    let globals = Session::globals(invocation, env, console)?;
    if globals.endpoints.len() != 1 {
        return Err(CliError::new(
            exit::INTERRUPTED,
            format!(
                "snapshot must be requested to one selected node, not multiple [{}]",
                globals.endpoints.join(" ")
            ),
        ));
    }
    let endpoint = globals.endpoints[0].clone();
    let limit = globals.command_timeout();
    let session = Session::connect(globals, Printer::new("simple", false)?, console).await?;
    let part = format!("{path}.part");
    let download = download(&session, &endpoint, &part, console);
    let result = match timed {
        true => match tokio::time::timeout(limit, download).await {
            Ok(result) => result,
            Err(_) => Err("context deadline exceeded".to_string()),
        },
        false => download.await,
    };
    let saved = result.and_then(|()| {
        std::fs::rename(&part, &path)
            .map_err(|e| format!("could not rename {part} to {path} ({})", io_text(&e)))
    });
    if let Err(message) = saved {
        let _ = std::fs::remove_file(&part);
        return Err(CliError::new(exit::INTERRUPTED, message));
    }
    console.err(&go_log::zap_info(
        &caller(152),
        "saved",
        &[("path", go_log::zap_string(&path))],
    ));
    console.out(&format!("Snapshot saved at {path}\n"));
    Ok(())
}

/// Streams the snapshot into `part`, checks its trailer and fsyncs it.
async fn download(
    session: &Session,
    endpoint: &str,
    part: &str,
    console: &mut Console<'_>,
) -> Result<(), String> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(part)
        .map_err(|e| format!("could not open {part} (open {part}: {})", io_text(&e)))?;
    console.err(&go_log::zap_info(
        &caller(119),
        "created temporary db file",
        &[("path", go_log::zap_string(part))],
    ));
    let started = std::time::Instant::now();
    let mut stream = session
        .client()
        .maintenance_snapshot()
        .await
        .map_err(|e| session::etcdctl_message(&e))?;
    console.err(&go_log::zap_info(
        &caller(127),
        "fetching snapshot",
        &[("endpoint", go_log::zap_string(endpoint))],
    ));
    let mut hasher = Sha256::new();
    let mut tail: Vec<u8> = Vec::new();
    let mut size = 0u64;
    while let Some(chunk) = stream
        .chunk()
        .await
        .map_err(|e| session::etcdctl_message(&e))?
    {
        file.write_all(&chunk).map_err(|e| io_text(&e))?;
        size += chunk.len() as u64;
        hash_all_but_trailer(&mut hasher, &mut tail, &chunk);
    }
    if size % ALIGN_BYTES != SHA256_BYTES {
        return Err(format!("sha256 checksum not found [bytes: {size}]"));
    }
    if hasher.finalize().as_slice() != tail.as_slice() {
        return Err(format!(
            "sha256 checksum mismatch: the snapshot from {endpoint} is damaged"
        ));
    }
    file.sync_all().map_err(|e| io_text(&e))?;
    console.err(&go_log::zap_info(
        &caller(142),
        "fetched snapshot",
        &[
            ("endpoint", go_log::zap_string(endpoint)),
            (
                "size",
                go_log::zap_string(&crate::output::humanize_bytes(size)),
            ),
            ("took", started.elapsed().as_secs_f64().to_string()),
        ],
    ));
    Ok(())
}

/// Feeds `hasher` everything but the last [`SHA256_BYTES`] seen so far, which stay in
/// `tail` (the trailer, once the stream ends).
fn hash_all_but_trailer(hasher: &mut Sha256, tail: &mut Vec<u8>, chunk: &[u8]) {
    tail.extend_from_slice(chunk);
    let keep = SHA256_BYTES as usize;
    if tail.len() > keep {
        let cut = tail.len() - keep;
        hasher.update(&tail[..cut]);
        tail.drain(..cut);
    }
}

/// Go's `os.PathError` text for an I/O error (`no such file or directory`).
fn io_text(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => error.to_string(),
    }
}

/// Runs `snapshot status <file>`.
pub async fn status(
    invocation: &mut Invocation,
    env: &Env,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    let [path] = invocation.args.as_slice() else {
        return Err(CliError::bad_args(
            "snapshot status requires exactly one argument",
        ));
    };
    let path = path.clone();
    let globals = Session::local_globals(invocation, env, console)?;
    let printer = Printer::new(&globals.write_out, globals.hex)?;
    let bytes = std::fs::read(&path)
        .map_err(|e| CliError::error(format!("stat {path}: {}", io_text(&e))))?;
    let summary = cairn_core::snapshot::status(&bytes)
        .map_err(|e| CliError::error(format!("snapshot file {path:?}: {e}")))?;
    printer.db_status(&summary, console)
}

/// What `snapshot restore` was asked to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreConfig {
    /// The snapshot file.
    pub snapshot: String,
    /// The member's name.
    pub name: String,
    /// The data dir to create.
    pub data_dir: PathBuf,
    /// Whether a missing or wrong SHA-256 trailer is accepted.
    pub skip_hash_check: bool,
}

/// Checks `restore`'s flags as etcd's `VerifyBootstrap` does: the name must be in
/// `--initial-cluster`, with exactly the URLs of `--initial-advertise-peer-urls`.
fn restore_config(invocation: &Invocation) -> Result<RestoreConfig, CliError> {
    let [snapshot] = invocation.args.as_slice() else {
        return Err(CliError::bad_args(
            "snapshot restore requires exactly one argument",
        ));
    };
    let values = &invocation.values;
    let name = values.str("name").to_string();
    if !values.str("wal-dir").is_empty() {
        return Err(CliError::error(
            "--wal-dir is not supported: cairn keeps its log in the data dir",
        ));
    }
    let mut cluster_urls: Vec<&str> = values
        .str("initial-cluster")
        .split(',')
        .filter_map(|item| item.trim().split_once('='))
        .filter(|(n, _)| *n == name)
        .map(|(_, url)| url)
        .collect();
    if cluster_urls.is_empty() {
        return Err(CliError::error(format!(
            "couldn't find local name {name:?} in the initial cluster configuration"
        )));
    }
    let advertised = values.str("initial-advertise-peer-urls");
    let mut peer_urls: Vec<&str> = advertised.split(',').map(str::trim).collect();
    cluster_urls.sort_unstable();
    peer_urls.sort_unstable();
    if cluster_urls != peer_urls {
        return Err(CliError::error(format!(
            "--initial-cluster has {name}={} but missing from --initial-advertise-peer-urls={advertised}",
            cluster_urls.join(",")
        )));
    }
    let data_dir = match values.str("data-dir") {
        "" => PathBuf::from(format!("{name}.etcd")),
        dir => PathBuf::from(dir),
    };
    Ok(RestoreConfig {
        snapshot: snapshot.clone(),
        name,
        data_dir,
        skip_hash_check: values.bool("skip-hash-check"),
    })
}

/// Runs `snapshot restore <file>`.
pub async fn restore(
    invocation: &mut Invocation,
    _env: &Env,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    let config = restore_config(invocation)?;
    let data_dir = config.data_dir.display().to_string();
    if is_non_empty_dir(&config.data_dir) || config.data_dir.is_file() {
        return Err(CliError::error(format!("data-dir {data_dir:?} exists")));
    }
    let fields = |path: &str| {
        vec![
            ("path", go_log::zap_string(path)),
            ("data-dir", go_log::zap_string(&data_dir)),
        ]
    };
    console.err(&go_log::zap_info(
        &caller(296),
        "restoring snapshot",
        &fields(&config.snapshot),
    ));
    let bytes = std::fs::read(&config.snapshot)
        .map_err(|e| CliError::error(format!("open {}: {}", config.snapshot, io_text(&e))))?;
    let bytes = checked(bytes, config.skip_hash_check).map_err(CliError::error)?;
    build_data_dir(&config, &bytes).map_err(CliError::error)?;
    console.err(&go_log::zap_info(
        &caller(309),
        "restored snapshot",
        &fields(&config.snapshot),
    ));
    Ok(())
}

fn is_non_empty_dir(path: &Path) -> bool {
    std::fs::read_dir(path).is_ok_and(|mut entries| entries.next().is_some())
}

/// The snapshot with a trailer that matches its body, as etcd's `saveDB` checks it: a
/// file without a trailer, or with a wrong one, is refused unless `skip_hash_check`, in
/// which case the trailer is recomputed (the records are still checked when restoring).
fn checked(mut bytes: Vec<u8>, skip_hash_check: bool) -> Result<Vec<u8>, String> {
    let len = bytes.len() as u64;
    let has_hash = len % ALIGN_BYTES == SHA256_BYTES;
    if !has_hash && !skip_hash_check {
        return Err("snapshot missing hash but --skip-hash-check=false".to_string());
    }
    if has_hash {
        let body_len = (len - SHA256_BYTES) as usize;
        let expected = bytes[body_len..].to_vec();
        let got = Sha256::digest(&bytes[..body_len]).to_vec();
        if expected != got && !skip_hash_check {
            return Err(format!(
                "expected sha256 {}, got {} (sha256 checksum mismatch: the snapshot is damaged)",
                go_byte_list(&expected),
                go_byte_list(&got)
            ));
        }
        bytes.truncate(body_len);
    }
    let trailer = Sha256::digest(&bytes);
    bytes.extend_from_slice(&trailer);
    Ok(bytes)
}

/// Go's `%v` of a byte slice: `[1 2 3]`.
fn go_byte_list(bytes: &[u8]) -> String {
    let items: Vec<String> = bytes.iter().map(u8::to_string).collect();
    format!("[{}]", items.join(" "))
}

/// Builds the data dir in a temporary directory beside it, then renames it into place.
fn build_data_dir(config: &RestoreConfig, bytes: &[u8]) -> Result<(), String> {
    let target = &config.data_dir;
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent)
        .map_err(|e| format!("mkdir {}: {}", parent.display(), io_text(&e)))?;
    let file_name = target
        .file_name()
        .map_or_else(|| "data".into(), |n| n.to_string_lossy().into_owned());
    let temp = parent.join(format!(".{file_name}.restoring.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&temp);
    let built = write_member(&temp.join("member"), bytes).and_then(|()| {
        if target.is_dir() {
            // An empty directory (checked by the caller) is replaced.
            std::fs::remove_dir(target).map_err(|e| io_text(&e))?;
        }
        std::fs::rename(&temp, target).map_err(|e| {
            format!(
                "could not rename {} to {} ({})",
                temp.display(),
                target.display(),
                io_text(&e)
            )
        })
    });
    if built.is_err() {
        let _ = std::fs::remove_dir_all(&temp);
    }
    built
}

/// Writes a new member's storage holding the snapshot's data (`restore_member`), closed
/// and synced when this returns.
#[cfg(not(madsim))]
fn write_member(member_dir: &Path, bytes: &[u8]) -> Result<(), String> {
    use cairn_core::storage::Engine as _;
    let engine =
        cairn_core::storage::fjall::FjallEngine::open(member_dir).map_err(|e| e.to_string())?;
    cairn_core::snapshot::restore_member(&engine, bytes).map_err(|e| e.to_string())?;
    engine.sync().map_err(|e| e.to_string())
}

#[cfg(madsim)]
fn write_member(_member_dir: &Path, _bytes: &[u8]) -> Result<(), String> {
    Err("snapshot restore is not available in simulation".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trailer_is_checked_or_recomputed() {
        let mut body = vec![0u8; 512];
        body[0] = 1;
        let mut good = body.clone();
        good.extend_from_slice(&Sha256::digest(&body));
        assert_eq!(checked(good.clone(), false).unwrap(), good);
        let mut bad = good.clone();
        bad[3] ^= 1;
        let err = checked(bad.clone(), false).unwrap_err();
        assert!(err.starts_with("expected sha256 ["), "{err}");
        assert!(err.contains("checksum mismatch"), "{err}");
        let repaired = checked(bad, true).unwrap();
        assert_eq!(
            &repaired[..512],
            &{
                let mut b = body.clone();
                b[3] ^= 1;
                b
            }[..]
        );
        assert_eq!(
            checked(body.clone(), false).unwrap_err(),
            "snapshot missing hash but --skip-hash-check=false"
        );
        assert_eq!(checked(body, true).unwrap(), good);
    }

    #[test]
    fn the_trailer_is_split_off_across_chunks() {
        let data: Vec<u8> = (0..100u8).collect();
        let mut hasher = Sha256::new();
        let mut tail = Vec::new();
        for chunk in data.chunks(7) {
            hash_all_but_trailer(&mut hasher, &mut tail, chunk);
        }
        assert_eq!(tail, &data[68..]);
        assert_eq!(hasher.finalize(), Sha256::digest(&data[..68]));
    }
}
