//! The directory where the helper keeps secrets (the token cache, stored credentials and
//! their locks), as a checked handle. Holding a `PrivateDir` is the proof that the checks
//! passed: the cache and the store take one, and nothing else in the crate opens files in
//! this directory. Writes go through a private temp file, flushed, then renamed over the
//! old file, so readers see old or new, never half.
//!
//! What is checked depends on the platform, and each has its own implementation with the
//! same methods:
//!
//! - Unix (`unix.rs`): the directory is opened once, without following a symbolic link,
//!   and checked on that open handle: owned by the effective uid (from the system call,
//!   never from `/proc`), not writable by group or others, and inside a parent that no
//!   other user can use to replace it. Every file is then opened relative to the handle
//!   with `O_NOFOLLOW`, so swapping a path component after the check changes nothing.
//!   Files are created 0600 (never chmod-ed after the fact), directories 0700.
//! - Windows (`windows.rs`): the directory must not be a symbolic link or junction, and
//!   is held open without delete sharing, so it cannot be renamed or removed while in
//!   use; files in it are opened without following reparse points and must be regular
//!   files. Access is what the directory inherits (`%LOCALAPPDATA%`: the user, SYSTEM
//!   and Administrators); its owner and ACL are not read (that needs unsafe Win32 calls,
//!   and this crate forbids unsafe code).

use std::path::Path;

use crate::error::{Error, Result};

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::PrivateDir;
#[cfg(unix)]
use unix::create_dirs;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::PrivateDir;
#[cfg(windows)]
use windows::create_dirs;

impl PrivateDir {
    /// Open `path`, creating it (and missing parents) first when it is not there; what
    /// was created is then opened and checked as any other directory.
    pub fn create(path: &Path) -> Result<PrivateDir> {
        if let Some(dir) = PrivateDir::open(path)? {
            return Ok(dir);
        }
        create_dirs(path).map_err(|e| Error::file(path, e))?;
        PrivateDir::open(path)?.ok_or_else(|| {
            Error::file(
                path,
                std::io::Error::new(std::io::ErrorKind::NotFound, "vanished after creation"),
            )
        })
    }
}
