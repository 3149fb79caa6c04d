//! Private files: the 0700 directory, 0600 files created with that mode (never chmod-ed
//! after the fact), atomic replacement through a temp file and `rename`, bounded reads
//! (of its own files, and of files the user names), and cross-process locks (std's
//! `File::lock`, with a `try_lock` loop for the timeout).
//! `cache`, `store` and `configure` build on these; nothing else touches files it writes.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Most bytes read from a cache, store, config or certificate file.
pub const MAX_FILE: u64 = 1024 * 1024;

/// Create `dir` (and parents) as 0700 if missing, and refuse a directory that others
/// could write to or that belongs to another user.
pub fn private_dir(dir: &Path) -> Result<()> {
    match std::fs::symlink_metadata(dir) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| Error::file(dir, e))?;
        }
        Err(e) => return Err(Error::file(dir, e)),
    }
    check_private(dir)
}

/// Whether files read from `dir` can be trusted: `Ok` when it is missing (nothing to
/// read) or private, else the same error `private_dir` gives. For read paths, which must
/// not create anything: a world-writable or foreign cache directory could hold planted
/// tokens or credentials (issue 8).
pub fn trusted_dir(dir: &Path) -> Result<()> {
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        _ => check_private(dir),
    }
}

fn check_private(dir: &Path) -> Result<()> {
    let meta = std::fs::metadata(dir).map_err(|e| Error::file(dir, e))?;
    if !meta.is_dir() {
        return Err(Error::Config(format!(
            "`{}` is not a directory",
            dir.display()
        )));
    }
    let uid = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
    if uid.is_some_and(|uid| meta.uid() != uid) {
        return Err(Error::Config(format!(
            "`{}` belongs to another user; refusing to keep credentials there (remove it or set ACR_ENTRA_CACHE_DIR)",
            dir.display()
        )));
    }
    if meta.permissions().mode() & 0o022 != 0 {
        return Err(Error::Config(format!(
            "`{}` is writable by group or others; refusing to keep credentials there (run `chmod 700` on it)",
            dir.display()
        )));
    }
    Ok(())
}

/// Create `dir` and its missing parents as 0700, leaving existing directories alone:
/// for client config directories (`~/.docker`), which are not ours to police.
pub fn ensure_dir(dir: &Path) -> Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::file(dir, e))
}

/// Read a whole file of at most `MAX_FILE` bytes; `Ok(None)` when it does not exist.
pub fn read_small(path: &Path) -> Result<Option<Vec<u8>>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::file(path, e)),
    };
    let mut buf = Vec::new();
    file.take(MAX_FILE)
        .read_to_end(&mut buf)
        .map_err(|e| Error::file(path, e))?;
    Ok(Some(buf))
}

/// Read a file the user named (config, certificate, token file, client config): it must
/// be a regular file (checked before opening, so a FIFO cannot block and `/dev/zero`
/// cannot fill memory) of at most `limit` bytes. Errors keep their `io::ErrorKind`, so
/// callers still tell "missing" from the rest.
pub fn read_user_file(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Error as IoError, ErrorKind};
    if !std::fs::metadata(path)?.is_file() {
        return Err(IoError::new(ErrorKind::InvalidInput, "not a regular file"));
    }
    let mut buf = Vec::new();
    File::open(path)?.take(limit + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > limit {
        return Err(IoError::new(
            ErrorKind::InvalidData,
            format!("larger than {} KiB", limit / 1024),
        ));
    }
    Ok(buf)
}

/// Replace `path` atomically with `bytes`: a 0600 temp file in the same directory,
/// flushed to disk, then renamed over the old file. Readers see old or new, never half.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_mode(path, bytes, 0o600)
}

/// `write_atomic` with another mode, set on the temp file before the rename (so a
/// client config edited by `configure` keeps its mode, whatever the umask).
pub fn write_atomic_mode(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        unique_suffix()
    ));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| Error::file(&tmp, e))?;
        file.write_all(bytes).map_err(|e| Error::file(&tmp, e))?;
        if mode != 0o600 {
            file.set_permissions(std::fs::Permissions::from_mode(mode))
                .map_err(|e| Error::file(&tmp, e))?;
        }
        file.sync_all().map_err(|e| Error::file(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::file(path, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    } else {
        remove_orphans(dir, &name);
    }
    result
}

/// Remove `.NAME.PID.N.tmp` files left by writers that were killed between creating the
/// temp file and the rename (issue 8: 1,000 SIGKILLs left ~200 of them, each holding a
/// copy of a secret). Only files of processes that no longer exist are touched.
fn remove_orphans(dir: &Path, name: &str) {
    let prefix = format!(".{name}.");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(rest) = file
            .to_str()
            .and_then(|f| f.strip_prefix(&prefix))
            .and_then(|f| f.strip_suffix(".tmp"))
        else {
            continue;
        };
        let Some(pid) = rest.split('.').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn unique_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()));
    nanos ^ (COUNTER.fetch_add(1, Ordering::Relaxed) << 32)
}

/// An exclusive lock on a `.lock` file, released when dropped. Functions that write a
/// locked file take `&Lock` so they cannot be called without holding it.
#[derive(Debug)]
pub struct Lock {
    file: Option<File>,
    path: PathBuf,
}

impl Lock {
    /// Take the lock, waiting at most `timeout`. A file system without locks proceeds
    /// unlocked (logged at debug level).
    pub fn acquire(path: &Path, timeout: Duration) -> Result<Lock> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|e| Error::file(path, e))?;
        let start = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => {
                    return Ok(Lock {
                        file: Some(file),
                        path: path.to_path_buf(),
                    });
                }
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(e)) if locks_unsupported(&e) => {
                    crate::debug!(
                        "`{}`: file locks unsupported here ({e}); proceeding unlocked",
                        path.display()
                    );
                    return Ok(Lock {
                        file: None,
                        path: path.to_path_buf(),
                    });
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(Error::file(path, e)),
            }
            if start.elapsed() >= timeout {
                return Err(Error::LockTimeout(format!(
                    "timed out after {}s waiting for the lock `{}`: another acr-entra process is probably minting or writing; try again",
                    timeout.as_secs(),
                    path.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn is_held(&self) -> bool {
        self.file.is_some()
    }
}

fn locks_unsupported(e: &std::io::Error) -> bool {
    // ENOSYS 38, EOPNOTSUPP/ENOTSUP 95, ENOLCK 37 (NFS without lockd).
    matches!(e.raw_os_error(), Some(37 | 38 | 95))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("a/b");
        private_dir(&d).unwrap();
        assert_eq!(
            std::fs::metadata(&d).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let f = d.join("x.json");
        write_atomic(&f, b"one").unwrap();
        write_atomic(&f, b"two").unwrap();
        assert_eq!(read_small(&f).unwrap().unwrap(), b"two");
        assert_eq!(
            std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::read_dir(&d).unwrap().count(),
            1,
            "no temp files left"
        );
        assert_eq!(read_small(&d.join("missing")).unwrap(), None);
        // A killed writer's temp file (pid above Linux's pid_max) goes with the next write.
        let orphan = d.join(".x.json.4194305.7.tmp");
        std::fs::write(&orphan, b"half").unwrap();
        write_atomic(&f, b"three").unwrap();
        assert!(!orphan.exists());
    }

    #[test]
    fn refuses_open_directories() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("open");
        std::fs::create_dir(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(
            private_dir(&d)
                .unwrap_err()
                .one_line()
                .contains("chmod 700")
        );
    }

    #[test]
    fn lock_times_out_while_held() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.lock");
        let held = Lock::acquire(&p, Duration::from_secs(1)).unwrap();
        assert!(held.is_held());
        let err = Lock::acquire(&p, Duration::from_millis(100)).unwrap_err();
        assert!(err.one_line().contains("x.lock"));
        drop(held);
        Lock::acquire(&p, Duration::from_millis(100)).unwrap();
    }
}
