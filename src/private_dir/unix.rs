//! The Unix `PrivateDir`: an open directory handle (`openat` with `O_NOFOLLOW`), checked
//! with `fstat` for owner and mode, every file opened relative to it.

use std::fs::{DirBuilder, File};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

use crate::error::{Error, Result};
use crate::files::{Lock, MAX_FILE, orphaned, unique_suffix};

/// A directory that passed the checks, held open.
#[derive(Debug)]
pub struct PrivateDir {
    fd: OwnedFd,
    path: PathBuf,
}

/// Create `path` and missing parents, 0700 (the umask can only take bits away).
pub(super) fn create_dirs(path: &Path) -> std::io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(path)
}

/// The effective uid, from the system call: a process without `/proc` still knows it.
fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Permission bits as a `u32`: `st_mode` is a `u32` on Linux but a `u16` on macOS.
#[allow(clippy::useless_conversion)]
fn permission_bits(mode: rustix::fs::RawMode) -> u32 {
    u32::from(mode) & 0o7777
}

fn refused(why: String) -> Error {
    Error::Config(why)
}

impl PrivateDir {
    /// Open `path` if it exists and can be trusted: `Ok(None)` when it (or its parent) is
    /// missing, an error naming the directory when it must not be trusted.
    pub fn open(path: &Path) -> Result<Option<PrivateDir>> {
        let (parent, name) = split(path)?;
        let parent_fd = match rustix::fs::openat(
            CWD,
            parent,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(e) => return Err(Error::file(parent, e.into())),
        };
        check_parent(&parent_fd, parent, path)?;
        let fd = match rustix::fs::openat(
            &parent_fd,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(Errno::LOOP | Errno::NOTDIR) => {
                return Err(not_a_directory(&parent_fd, name, path));
            }
            Err(e) => return Err(Error::file(path, e.into())),
        };
        let stat = rustix::fs::fstat(&fd).map_err(|e| Error::file(path, e.into()))?;
        check_own(&stat, path)?;
        Ok(Some(PrivateDir {
            fd,
            path: path.to_path_buf(),
        }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory's permission bits, read from the open handle.
    pub fn mode(&self) -> u32 {
        rustix::fs::fstat(&self.fd).map_or(0, |s| permission_bits(s.st_mode))
    }

    /// The permission bits of `name` (not following a link), or `None` when absent.
    pub fn entry_mode(&self, name: &str) -> Option<u32> {
        check_name(name).ok()?;
        rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW)
            .ok()
            .map(|s| permission_bits(s.st_mode))
    }

    /// Where `name` is, for messages only: nothing opens this path.
    pub fn display_path(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    fn open_at(&self, name: &str, flags: OFlags, mode: Mode) -> std::io::Result<File> {
        check_name(name)?;
        let fd = rustix::fs::openat(
            &self.fd,
            name,
            flags | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            mode,
        )?;
        Ok(File::from(fd))
    }

    /// Read the regular file `name` (at most `MAX_FILE` bytes); `Ok(None)` when missing.
    /// A symbolic link, FIFO or device there is an error, never followed or read.
    pub fn read(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let path = self.display_path(name);
        let file = match self.open_at(name, OFlags::RDONLY | OFlags::NONBLOCK, Mode::empty()) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::file(&path, e)),
        };
        let stat = rustix::fs::fstat(&file).map_err(|e| Error::file(&path, e.into()))?;
        if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
            return Err(Error::file(
                &path,
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"),
            ));
        }
        // Sized from the handle's `fstat`: one read fills it, one more sees the end.
        let size = u64::try_from(stat.st_size).unwrap_or(0).min(MAX_FILE);
        let mut buf = Vec::with_capacity(size as usize + 1);
        file.take(MAX_FILE)
            .read_to_end(&mut buf)
            .map_err(|e| Error::file(&path, e))?;
        Ok(Some(buf))
    }

    /// Replace `name` atomically with `bytes` (0600).
    pub fn write_atomic(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let tmp = format!(".{name}.{}.{}.tmp", std::process::id(), unique_suffix());
        let tmp_path = self.display_path(&tmp);
        let result = (|| {
            let mut file = self
                .open_at(
                    &tmp,
                    OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(|e| Error::file(&tmp_path, e))?;
            file.write_all(bytes)
                .map_err(|e| Error::file(&tmp_path, e))?;
            file.sync_all().map_err(|e| Error::file(&tmp_path, e))?;
            check_name(name).map_err(|e| Error::file(&tmp_path, e))?;
            rustix::fs::renameat(&self.fd, tmp.as_str(), &self.fd, name)
                .map_err(|e| Error::file(self.display_path(name), e.into()))
        })();
        if result.is_err() {
            let _ = rustix::fs::unlinkat(&self.fd, tmp.as_str(), AtFlags::empty());
        } else {
            self.remove_orphans(name);
        }
        result
    }

    /// Remove `name`; `Ok(false)` when it was not there.
    pub fn remove(&self, name: &str) -> Result<bool> {
        check_name(name).map_err(|e| Error::file(self.display_path(name), e))?;
        match rustix::fs::unlinkat(&self.fd, name, AtFlags::empty()) {
            Ok(()) => Ok(true),
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(Error::file(self.display_path(name), e.into())),
        }
    }

    /// The names of the directory's entries (`.` and `..` left out).
    pub fn names(&self) -> Vec<String> {
        let Ok(dir) = rustix::fs::Dir::read_from(&self.fd) else {
            return Vec::new();
        };
        dir.filter_map(|entry| entry.ok()?.file_name().to_str().ok().map(str::to_string))
            .filter(|n| n != "." && n != "..")
            .collect()
    }

    /// Take the exclusive lock on the file `name`, waiting at most `timeout`.
    pub fn lock(&self, name: &str, timeout: Duration) -> Result<Lock> {
        let path = self.display_path(name);
        let file = self
            .open_at(
                name,
                OFlags::RDWR | OFlags::CREATE,
                Mode::from_raw_mode(0o600),
            )
            .map_err(|e| Error::file(&path, e))?;
        Lock::hold(file, &path, timeout)
    }

    /// Remove temp files of killed writers of `name` (see `files::orphaned`).
    fn remove_orphans(&self, name: &str) {
        for file in self.names() {
            if orphaned(name, &file) {
                let _ = rustix::fs::unlinkat(&self.fd, file.as_str(), AtFlags::empty());
            }
        }
    }
}

/// `path` as (parent, last component); `/`, `..` and empty paths have no last component.
fn split(path: &Path) -> Result<(&Path, &std::ffi::OsStr)> {
    let name = path.file_name().ok_or_else(|| {
        refused(format!(
            "`{}` cannot be the cache directory (name a directory of its own)",
            path.display()
        ))
    })?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Ok((parent, name))
}

/// The parent must not let anyone else rename or replace the directory: owned by us or
/// root, and not writable by group or others unless sticky (as `/tmp` is).
fn check_parent(fd: &OwnedFd, parent: &Path, dir: &Path) -> Result<()> {
    let stat = rustix::fs::fstat(fd).map_err(|e| Error::file(parent, e.into()))?;
    if stat.st_uid != euid() && stat.st_uid != 0 {
        return Err(refused(format!(
            "`{}` is in `{}`, which belongs to another user who could replace it; refusing to keep credentials there (set ACR_ENTRA_CACHE_DIR to a directory of yours)",
            dir.display(),
            parent.display()
        )));
    }
    if stat.st_mode & 0o022 != 0 && stat.st_mode & 0o1000 == 0 {
        return Err(refused(format!(
            "`{}` is in `{}`, which others can write to without the sticky bit, so they could replace it; refusing to keep credentials there (run `chmod o-w,g-w` on the parent or set ACR_ENTRA_CACHE_DIR)",
            dir.display(),
            parent.display()
        )));
    }
    Ok(())
}

fn check_own(stat: &Stat, dir: &Path) -> Result<()> {
    if stat.st_uid != euid() {
        return Err(refused(format!(
            "`{}` belongs to another user; refusing to keep credentials there (remove it or set ACR_ENTRA_CACHE_DIR)",
            dir.display()
        )));
    }
    if stat.st_mode & 0o022 != 0 {
        return Err(refused(format!(
            "`{}` is writable by group or others; refusing to keep credentials there (run `chmod 700` on it)",
            dir.display()
        )));
    }
    Ok(())
}

/// Why `name` in `parent` could not be opened as a directory: a symbolic link, or
/// something else.
fn not_a_directory(parent: &OwnedFd, name: &std::ffi::OsStr, dir: &Path) -> Error {
    let link = rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|s| FileType::from_raw_mode(s.st_mode) == FileType::Symlink);
    if link {
        refused(format!(
            "`{}` is a symbolic link; refusing to keep credentials there (point ACR_ENTRA_CACHE_DIR at the real directory)",
            dir.display()
        ))
    } else {
        refused(format!("`{}` is not a directory", dir.display()))
    }
}

/// Names are ours (fixed words and hex digests), never paths.
fn check_name(name: &str) -> std::io::Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a plain file name",
        ));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests plant and damage files directly
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn atomic_write_is_private() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("a/b");
        let dir = PrivateDir::create(&d).unwrap();
        assert_eq!(mode(&d), 0o700);
        dir.write_atomic("x.json", b"one").unwrap();
        dir.write_atomic("x.json", b"two").unwrap();
        assert_eq!(dir.read("x.json").unwrap().unwrap(), b"two");
        assert_eq!(mode(&d.join("x.json")), 0o600);
        assert_eq!(
            dir.names(),
            vec!["x.json".to_string()],
            "no temp files left"
        );
        assert_eq!(dir.read("missing").unwrap(), None);
        // A killed writer's temp file (pid above Linux's pid_max) goes with the next write.
        let orphan = d.join(".x.json.4194305.7.tmp");
        std::fs::write(&orphan, b"half").unwrap();
        dir.write_atomic("x.json", b"three").unwrap();
        assert!(!orphan.exists());
        assert!(dir.remove("x.json").unwrap());
        assert!(!dir.remove("x.json").unwrap());
        for bad in ["", ".", "..", "a/b", "../x"] {
            assert!(dir.read(bad).is_err(), "{bad}");
            assert!(dir.write_atomic(bad, b"x").is_err(), "{bad}");
        }
    }

    #[test]
    fn refuses_open_linked_and_exposed_directories() {
        let tmp = tempfile::tempdir().unwrap();
        let open = tmp.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = PrivateDir::open(&open).unwrap_err().one_line();
        assert!(e.contains("chmod 700"), "{e}");

        let real = tmp.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o700)).unwrap();
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let e = PrivateDir::open(&link).unwrap_err().one_line();
        assert!(e.contains("symbolic link") && e.contains("link"), "{e}");

        // A parent that others can write without the sticky bit.
        let shared = tmp.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::create_dir(shared.join("cache")).unwrap();
        std::fs::set_permissions(shared.join("cache"), std::fs::Permissions::from_mode(0o700))
            .unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = PrivateDir::open(&shared.join("cache"))
            .unwrap_err()
            .one_line();
        assert!(e.contains("sticky"), "{e}");
        // With the sticky bit (as /tmp), it is fine.
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(PrivateDir::open(&shared.join("cache")).unwrap().is_some());

        assert!(
            PrivateDir::open(&tmp.path().join("missing/x"))
                .unwrap()
                .is_none()
        );
        assert!(PrivateDir::open(Path::new("/")).is_err());
    }

    #[test]
    fn planted_links_inside_are_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("c");
        let dir = PrivateDir::create(&d).unwrap();
        std::fs::write(tmp.path().join("elsewhere"), b"planted").unwrap();
        std::os::unix::fs::symlink(tmp.path().join("elsewhere"), d.join("x.json")).unwrap();
        assert!(dir.read("x.json").is_err());
        assert!(dir.lock("x.json", Duration::from_millis(10)).is_err());
    }

    #[test]
    fn lock_times_out_while_held() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = PrivateDir::create(&tmp.path().join("c")).unwrap();
        let held = dir.lock("x.lock", Duration::from_secs(1)).unwrap();
        assert!(held.is_held());
        let err = dir.lock("x.lock", Duration::from_millis(100)).unwrap_err();
        assert!(err.one_line().contains("x.lock"));
        drop(held);
        dir.lock("x.lock", Duration::from_millis(100)).unwrap();
    }
}
