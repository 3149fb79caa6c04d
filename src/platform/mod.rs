//! What differs between operating systems, in one place, so no other module needs a
//! `cfg`: file modes on the files the helper creates outside its private directory,
//! whether a file is a program and where a program is on `PATH` (`az`, and `az.cmd` on
//! Windows through `PATHEXT`), running a child in its own process group and killing that
//! whole tree, whether a writer's process is gone, which file-lock errors mean "locks
//! unsupported here", this boot's id, and which directory conventions apply (`Conventions::HERE`, used by
//! `config`). The private directory has its own two implementations in `private_dir`.
//!
//! Unix (Linux, macOS) is `unix.rs`, Windows is `windows.rs`; both offer the same
//! functions with the same signatures.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::*;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::*;

/// Where a platform keeps a user's configuration, cache and home, and where the
/// clients the helper configures keep theirs. Chosen at compile time (`HERE`); the
/// other values exist so that `config`'s tests cover every platform on any machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conventions {
    /// Linux and other Unix: `HOME`, `~/.config`, `~/.cache` (the XDG base directories).
    Xdg,
    /// macOS: `HOME`, `~/Library/Application Support`, `~/Library/Caches`.
    MacOs,
    /// Windows: `USERPROFILE`, `%APPDATA%` (roaming) for configuration and
    /// `%LOCALAPPDATA%` (this machine only) for the cache and stored credentials.
    Windows,
}

impl Conventions {
    pub const HERE: Conventions = if cfg!(windows) {
        Conventions::Windows
    } else if cfg!(target_os = "macos") {
        Conventions::MacOs
    } else {
        Conventions::Xdg
    };
}
