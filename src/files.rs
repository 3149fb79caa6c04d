//! Files outside the helper's private directory: bounded, regular-only reads of files the
//! user names (config, certificate, token file, client configs), atomic replacement of a
//! client's config file through a temp file and `rename` (for `configure`), and the
//! cross-process `Lock` (std's `File::lock`, with a `try_lock` loop for the timeout).
//! The private directory itself is `private_dir`'s alone.

// This module owns writes to files the user names (clippy.toml keeps them here).
#![allow(clippy::disallowed_methods)]

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Most bytes read from a cache, store, config or certificate file.
pub const MAX_FILE: u64 = 1024 * 1024;

/// Create `dir` and its missing parents as 0700, leaving existing directories alone:
/// for client config directories (`~/.docker`), which are not ours to police.
pub fn ensure_dir(dir: &Path) -> Result<()> {
    crate::platform::private_dirs(DirBuilder::new().recursive(true))
        .create(dir)
        .map_err(|e| Error::file(dir, e))
}

/// Read a file the user named (config, certificate, token file, client config): it must
/// be a regular file of at most `limit` bytes. The handle's type is checked before any
/// read (the open does not wait on a FIFO, and `/dev/zero` is never read), and one open
/// answers both "missing" and "what is it", with no separate `stat` of the path. Errors
/// keep their `io::ErrorKind`, so callers still tell "missing" from the rest.
pub fn read_user_file(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Error as IoError, ErrorKind};
    let file = crate::platform::no_block_on_open(OpenOptions::new().read(true)).open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(IoError::new(ErrorKind::InvalidInput, "not a regular file"));
    }
    // Sized from the handle: one read fills it, one more sees the end.
    let mut buf = Vec::with_capacity(meta.len().min(limit) as usize + 1);
    file.take(limit + 1).read_to_end(&mut buf)?;
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
        let mut file =
            crate::platform::private_file(OpenOptions::new().write(true).create_new(true))
                .open(&tmp)
                .map_err(|e| Error::file(&tmp, e))?;
        file.write_all(bytes).map_err(|e| Error::file(&tmp, e))?;
        if mode != 0o600 {
            crate::platform::set_mode(&file, mode).map_err(|e| Error::file(&tmp, e))?;
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

/// Remove `.NAME.PID.N.tmp` files in `dir` left by writers killed between creating the
/// temp file and the rename.
fn remove_orphans(dir: &Path, name: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry
            .file_name()
            .to_str()
            .is_some_and(|f| orphaned(name, f))
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Whether `file` is the temp file `.NAME.PID.N.tmp` of a writer of `name` that no longer
/// exists (killed between creating it and the rename: 1,000 SIGKILLs left ~200 of them,
/// each holding a copy of a secret). Without `/proc` nobody counts as gone.
pub fn orphaned(name: &str, file: &str) -> bool {
    let Some(rest) = file
        .strip_prefix('.')
        .and_then(|f| f.strip_prefix(name))
        .and_then(|f| f.strip_prefix('.'))
        .and_then(|f| f.strip_suffix(".tmp"))
    else {
        return false;
    };
    let Some(pid) = rest.split('.').next().and_then(|p| p.parse::<u32>().ok()) else {
        return false;
    };
    pid != std::process::id() && crate::platform::process_gone(pid)
}

/// A temp-file suffix unique within this process.
pub fn unique_suffix() -> u64 {
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
    /// Take the lock on `file` (opened by its owner, e.g. `PrivateDir::lock`), waiting
    /// at most `timeout`. A file system without locks proceeds unlocked (logged at debug
    /// level).
    pub fn hold(file: File, path: &Path, timeout: Duration) -> Result<Lock> {
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
                Err(std::fs::TryLockError::Error(e)) if crate::platform::locks_unsupported(&e) => {
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
                return Err(Error::LockTimeout {
                    path: path.to_path_buf(),
                    seconds: timeout.as_secs(),
                });
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

// Modes and `/proc`: Unix only.
#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn atomic_write_replaces_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("config.json");
        write_atomic(&f, b"one").unwrap();
        write_atomic_mode(&f, b"two", 0o644).unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"two");
        assert_eq!(
            std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o644
        );
        // A killed writer's temp file (pid above Linux's pid_max) goes with the next write.
        let orphan = dir.path().join(".config.json.4194305.7.tmp");
        std::fs::write(&orphan, b"half").unwrap();
        write_atomic(&f, b"three").unwrap();
        assert!(!orphan.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        assert!(!orphaned("config.json", "config.json"));
        assert!(!orphaned(
            "config.json",
            &format!(".config.json.{}.1.tmp", std::process::id())
        ));
    }
}
