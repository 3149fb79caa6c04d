//! Other users on one machine, for the tests where two must meet: as root (CI), the
//! helper runs as another numeric uid through `setpriv --reuid --regid --clear-groups`
//! (no passwd entry needed), and test files are handed to that uid. Without root or
//! `setpriv`, `other_user` says why and the test skips with that message.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Uids with no passwd entry on any ordinary machine.
pub const VICTIM: u32 = 42_421;
pub const ATTACKER: u32 = 42_422;

pub fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// The wrapper that runs a command as `uid` (group `uid`, no supplementary groups), or
/// why that is impossible here.
pub fn as_user(uid: u32) -> Result<Vec<String>, String> {
    if !is_root() {
        return Err("not root, so cannot run the helper as another uid".into());
    }
    let probe = std::process::Command::new("setpriv")
        .args([
            &format!("--reuid={uid}"),
            &format!("--regid={uid}"),
            "--clear-groups",
            "true",
        ])
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        return Err("setpriv cannot switch uids here".into());
    }
    Ok(vec![
        "setpriv".into(),
        format!("--reuid={uid}"),
        format!("--regid={uid}"),
        "--clear-groups".into(),
    ])
}

/// Say why a test did not run, on stderr (shown with `--nocapture`), and let it pass.
pub fn skip(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "skipped: {why}");
}

/// Hand `path` and everything under it to `uid`.
pub fn chown_tree(path: &Path, uid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(uid)).unwrap();
    if std::fs::symlink_metadata(path).unwrap().is_dir() {
        for entry in std::fs::read_dir(path).unwrap().flatten() {
            chown_tree(&entry.path(), uid);
        }
    }
}

/// A copy of the helper binary that `uid` can run, inside `dir` (the build's own
/// directory may not be reachable by other users).
pub fn binary_for(dir: &Path, uid: u32) -> String {
    let copy = dir.join("docker-credential-acr-entra");
    std::fs::copy(super::env::bin(), &copy).unwrap();
    std::os::unix::fs::chown(&copy, Some(uid), Some(uid)).unwrap();
    wait_until_executable(&copy);
    copy.display().to_string()
}

/// A child that another test thread forked while the copy was open for writing holds that
/// descriptor until it execs, and until then running the copy fails with "Text file busy"
/// (ETXTBSY). The window is microseconds natively and long under emulation (qemu), so run
/// the copy once, retrying only that error, before a test relies on it; no new child can
/// inherit the descriptor once `fs::copy` has closed it.
fn wait_until_executable(path: &Path) {
    const ETXTBSY: i32 = 26;
    for _ in 0..200 {
        match std::process::Command::new(path).arg("version").output() {
            Err(e) if e.raw_os_error() == Some(ETXTBSY) => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) => panic!("run {}: {e}", path.display()),
            Ok(_) => return,
        }
    }
    panic!("{} stayed busy (ETXTBSY) for 10 s", path.display());
}
