//! The Windows side of `platform`. Windows has no mode bits: files and directories take
//! the access control list inherited from their parent (for `%LOCALAPPDATA%` and
//! `%APPDATA%`: the user, SYSTEM and Administrators), so the mode functions do nothing
//! and report the nominal Unix modes. Programs are found through `PATHEXT` (`az` is
//! `az.cmd`), a child runs in a new process group without a window, and `taskkill /T`
//! stops the whole tree.

use std::ffi::OsStr;
use std::fs::{DirBuilder, File, Metadata, OpenOptions};
use std::os::windows::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// `CREATE_NEW_PROCESS_GROUP | CREATE_NO_WINDOW` (winbase.h): the child and what it
/// starts form a tree `kill_tree` can stop, and no console window flashes up.
const CREATION_FLAGS: u32 = 0x0000_0200 | 0x0800_0000;

/// Windows' own default for `PATHEXT`.
const DEFAULT_PATHEXT: &str = ".COM;.EXE;.BAT;.CMD";

/// Directories take the ACL inherited from their parent.
pub fn private_dirs(builder: &mut DirBuilder) -> &mut DirBuilder {
    builder
}

/// Files take the ACL inherited from their directory.
pub fn private_file(options: &mut OpenOptions) -> &mut OpenOptions {
    options
}

/// Opening a file does not wait for a writer on Windows.
pub fn no_block_on_open(options: &mut OpenOptions) -> &mut OpenOptions {
    options
}

/// No mode bits to set.
#[allow(clippy::unnecessary_wraps)] // the signature Unix's needs
pub fn set_mode(_file: &File, _mode: u32) -> std::io::Result<()> {
    Ok(())
}

/// The nominal mode of a private file: Windows has no mode bits.
pub fn mode(_meta: &Metadata) -> u32 {
    0o600
}

/// The first file named `program` with one of `PATHEXT`'s suffixes (`.COM;.EXE;.BAT;.CMD`
/// when unset) in a directory of `path`.
pub fn find_on_path(path: &OsStr, pathext: Option<&str>, program: &str) -> Option<PathBuf> {
    let suffixes: Vec<&str> = pathext
        .unwrap_or(DEFAULT_PATHEXT)
        .split(';')
        .map(str::trim)
        .filter(|s| s.starts_with('.'))
        .collect();
    std::env::split_paths(path).find_map(|dir| {
        suffixes
            .iter()
            .map(|suffix| dir.join(format!("{program}{suffix}")))
            .find(|candidate| std::fs::metadata(candidate).is_ok_and(|m| m.is_file()))
    })
}

/// Run the child in a new process group with no console window of its own.
pub fn own_process_group(command: &mut Command) -> &mut Command {
    command.creation_flags(CREATION_FLAGS)
}

/// Stop the child and everything it started (`cmd` runs `az.cmd`, which runs python):
/// `taskkill /T /F /PID PID`.
pub fn kill_tree(pid: u32) {
    let _ = Command::new("taskkill")
        .args(["/T", "/F", "/PID", &pid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// This boot's identity: Windows has none without unsafe calls, so what is remembered
/// about the network lasts only its short time-to-live.
pub fn boot_id() -> Option<String> {
    None
}

/// Without a safe way to ask whether a process exists, nobody counts as gone: a killed
/// writer's temp file stays (it is private, like the directory it is in).
pub fn process_gone(_pid: u32) -> bool {
    false
}

/// ERROR_INVALID_FUNCTION (1) and ERROR_NOT_SUPPORTED (50): network redirectors
/// without byte-range locks.
pub fn locks_unsupported(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(1 | 50))
}
