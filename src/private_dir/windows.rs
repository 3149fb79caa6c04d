//! The Windows `PrivateDir`, with std alone (this crate forbids unsafe code, and reading
//! an owner SID or a DACL takes unsafe Win32 calls). Checked: the directory is not a
//! symbolic link or junction (a reparse point) and is a directory, first by path and then
//! on the handle, which stays open without delete sharing, so the directory cannot be
//! renamed, replaced or removed while the helper uses it. Files in it are opened without
//! following reparse points, and a link, junction or anything but a regular file there is
//! refused. Not checked: who owns the directory and what its ACL grants. The default
//! location, `%LOCALAPPDATA%\acr-entra`, inherits its ACL from the user's profile (the
//! user, SYSTEM and Administrators), which no other user can read or write.

// This module owns the helper's files on Windows (clippy.toml keeps writes here).
#![allow(clippy::disallowed_methods)]

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{Read, Write};
use std::os::windows::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::files::{Lock, MAX_FILE, orphaned, unique_suffix};

/// winnt.h / winbase.h values std does not name.
const FILE_ATTRIBUTE_REPARSE_POINT: u32 = 0x0400;
const FILE_FLAG_OPEN_REPARSE_POINT: u32 = 0x0020_0000;
const FILE_FLAG_BACKUP_SEMANTICS: u32 = 0x0200_0000;
const FILE_SHARE_READ: u32 = 0x1;
const FILE_SHARE_WRITE: u32 = 0x2;

/// A directory that passed the checks, held open.
#[derive(Debug)]
pub struct PrivateDir {
    /// Held for its share mode: without `FILE_SHARE_DELETE` nobody can rename or
    /// remove the directory while it is open.
    _handle: File,
    path: PathBuf,
}

/// Create `path` and missing parents; they inherit the parent's ACL.
pub(super) fn create_dirs(path: &Path) -> std::io::Result<()> {
    DirBuilder::new().recursive(true).create(path)
}

fn refused(why: String) -> Error {
    Error::Config(why)
}

fn reparse_point(meta: &std::fs::Metadata) -> bool {
    meta.file_attributes() & FILE_ATTRIBUTE_REPARSE_POINT != 0
}

impl PrivateDir {
    /// Open `path` if it exists and can be trusted: `Ok(None)` when it is missing, an
    /// error naming the directory when it must not be trusted.
    pub fn open(path: &Path) -> Result<Option<PrivateDir>> {
        if path.file_name().is_none() {
            return Err(refused(format!(
                "`{}` cannot be the cache directory (name a directory of its own)",
                path.display()
            )));
        }
        match std::fs::symlink_metadata(path) {
            Ok(meta) => check(&meta, path)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::file(path, e)),
        }
        let handle = OpenOptions::new()
            .read(true)
            .share_mode(FILE_SHARE_READ | FILE_SHARE_WRITE)
            .custom_flags(FILE_FLAG_BACKUP_SEMANTICS | FILE_FLAG_OPEN_REPARSE_POINT)
            .open(path);
        let handle = match handle {
            Ok(handle) => handle,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::file(path, e)),
        };
        // Again on the handle: what is open now is what stays checked.
        let meta = handle.metadata().map_err(|e| Error::file(path, e))?;
        check(&meta, path)?;
        Ok(Some(PrivateDir {
            _handle: handle,
            path: path.to_path_buf(),
        }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The nominal mode (Windows has no mode bits; access is the inherited ACL).
    pub fn mode(&self) -> u32 {
        0o700
    }

    /// The nominal mode of `name`, or `None` when absent.
    pub fn entry_mode(&self, name: &str) -> Option<u32> {
        check_name(name).ok()?;
        std::fs::symlink_metadata(self.path.join(name))
            .ok()
            .map(|_| 0o600)
    }

    /// Where `name` is, for messages only.
    pub fn display_path(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Open `name` without following a reparse point; anything but a regular file there
    /// is refused.
    fn open_at(&self, name: &str, options: &mut OpenOptions) -> std::io::Result<File> {
        check_name(name)?;
        let file = options
            .custom_flags(FILE_FLAG_OPEN_REPARSE_POINT)
            .open(self.path.join(name))?;
        let meta = file.metadata()?;
        if reparse_point(&meta) || !meta.is_file() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a regular file",
            ));
        }
        Ok(file)
    }

    /// Read the regular file `name` (at most `MAX_FILE` bytes); `Ok(None)` when missing.
    pub fn read(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let path = self.display_path(name);
        let file = match self.open_at(name, OpenOptions::new().read(true)) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::file(&path, e)),
        };
        let mut buf = Vec::new();
        file.take(MAX_FILE)
            .read_to_end(&mut buf)
            .map_err(|e| Error::file(&path, e))?;
        Ok(Some(buf))
    }

    /// Replace `name` atomically with `bytes`.
    pub fn write_atomic(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let tmp = format!(".{name}.{}.{}.tmp", std::process::id(), unique_suffix());
        let tmp_path = self.display_path(&tmp);
        let result = (|| {
            let mut file = self
                .open_at(&tmp, OpenOptions::new().write(true).create_new(true))
                .map_err(|e| Error::file(&tmp_path, e))?;
            file.write_all(bytes)
                .map_err(|e| Error::file(&tmp_path, e))?;
            file.sync_all().map_err(|e| Error::file(&tmp_path, e))?;
            drop(file);
            check_name(name).map_err(|e| Error::file(&tmp_path, e))?;
            // MoveFileEx with MOVEFILE_REPLACE_EXISTING: replaces a link, never follows it.
            std::fs::rename(&tmp_path, self.display_path(name))
                .map_err(|e| Error::file(self.display_path(name), e))
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp_path);
        } else {
            self.remove_orphans(name);
        }
        result
    }

    /// Remove `name`; `Ok(false)` when it was not there.
    pub fn remove(&self, name: &str) -> Result<bool> {
        check_name(name).map_err(|e| Error::file(self.display_path(name), e))?;
        match std::fs::remove_file(self.display_path(name)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::file(self.display_path(name), e)),
        }
    }

    /// The names of the directory's entries.
    pub fn names(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.path) else {
            return Vec::new();
        };
        entries
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .collect()
    }

    /// Take the exclusive lock on the file `name`, waiting at most `timeout`.
    pub fn lock(&self, name: &str, timeout: Duration) -> Result<Lock> {
        let path = self.display_path(name);
        let file = self
            .open_at(
                name,
                OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false),
            )
            .map_err(|e| Error::file(&path, e))?;
        Lock::hold(file, &path, timeout)
    }

    /// Remove temp files of killed writers of `name` (see `files::orphaned`).
    fn remove_orphans(&self, name: &str) {
        for file in self.names() {
            if orphaned(name, &file) {
                let _ = std::fs::remove_file(self.display_path(&file));
            }
        }
    }
}

/// The directory (by path, then by handle) must be a directory and not a reparse point.
fn check(meta: &std::fs::Metadata, dir: &Path) -> Result<()> {
    if reparse_point(meta) {
        return Err(refused(format!(
            "`{}` is a symbolic link or junction; refusing to keep credentials there (point ACR_ENTRA_CACHE_DIR at the real directory)",
            dir.display()
        )));
    }
    if !meta.is_dir() {
        return Err(refused(format!("`{}` is not a directory", dir.display())));
    }
    Ok(())
}

/// Names are ours (fixed words and hex digests), never paths, drive-relative names or
/// alternate data streams (`name:stream`).
fn check_name(name: &str) -> std::io::Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', ':', '\0']) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a plain file name",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_refuses_paths() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("a").join("b");
        let dir = PrivateDir::create(&d).unwrap();
        dir.write_atomic("x.json", b"one").unwrap();
        dir.write_atomic("x.json", b"two").unwrap();
        assert_eq!(dir.read("x.json").unwrap().unwrap(), b"two");
        assert_eq!(dir.names(), vec!["x.json".to_string()]);
        assert_eq!(dir.read("missing").unwrap(), None);
        assert!(dir.remove("x.json").unwrap());
        assert!(!dir.remove("x.json").unwrap());
        for bad in ["", ".", "..", "a/b", "a\\b", "x:stream", "C:x"] {
            assert!(dir.read(bad).is_err(), "{bad}");
            assert!(dir.write_atomic(bad, b"x").is_err(), "{bad}");
        }
    }

    #[test]
    fn lock_times_out_while_held() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = PrivateDir::create(&tmp.path().join("c")).unwrap();
        let held = dir.lock("x.lock", Duration::from_secs(1)).unwrap();
        let err = dir.lock("x.lock", Duration::from_millis(100)).unwrap_err();
        assert!(err.one_line().contains("x.lock"));
        drop(held);
        dir.lock("x.lock", Duration::from_millis(100)).unwrap();
    }

    #[test]
    fn a_held_directory_cannot_be_renamed() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("c");
        let dir = PrivateDir::create(&d).unwrap();
        assert!(std::fs::rename(&d, tmp.path().join("moved")).is_err());
        drop(dir);
        std::fs::rename(&d, tmp.path().join("moved")).unwrap();
    }
}
