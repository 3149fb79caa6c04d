//! `install.sh` checks what the build needs before it starts: a Rust at least as new as
//! `rust-version` (distribution packages are often older) and a C compiler (ring compiles
//! C), each missing piece one line on stderr with its fix, exit 1, nothing built. Run with
//! a PATH of stand-ins, so no build starts either way.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

fn stand_in(dir: &Path, name: &str, script: &str) {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// `install.sh` with PATH = only `dir` (plus the `dirname` and `sed` it runs first).
fn install(dir: &Path) -> (Option<i32>, String, String) {
    for tool in ["dirname", "sed"] {
        std::os::unix::fs::symlink(format!("/usr/bin/{tool}"), dir.join(tool))
            .or_else(|_| std::os::unix::fs::symlink(format!("/bin/{tool}"), dir.join(tool)))
            .ok();
    }
    let out = Command::new("/bin/bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("install.sh"))
        .env_clear()
        .env("PATH", dir)
        .env("HOME", dir)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn install_names_an_old_rust_and_a_missing_c_compiler_before_building() {
    let dir = tempfile::tempdir().unwrap();
    // Would fail the test loudly if the script went on to build.
    stand_in(dir.path(), "cargo", "echo cargo-was-run >&2; exit 3");
    stand_in(
        dir.path(),
        "rustc",
        "echo 'rustc 1.63.0 (4b91a6ea7 2022-08-08)'",
    );
    let need = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("rust-version = \"")?
                .strip_suffix('"')
                .map(str::to_string)
        })
        .unwrap();
    assert_eq!(
        install(dir.path()),
        (
            Some(1),
            String::new(),
            format!(
                "install.sh: rustc 1.63.0 is older than the {need} this project needs (distribution packages often are): \
                 install a current toolchain with rustup (https://rustup.rs), or use a package (README, Install)\n"
            )
        )
    );
    stand_in(
        dir.path(),
        "rustc",
        "echo 'rustc 1.95.0 (59807616e 2026-04-14)'",
    );
    assert_eq!(
        install(dir.path()),
        (
            Some(1),
            String::new(),
            "install.sh: no C compiler (cc, gcc or clang) found; the TLS library's crypto (ring) compiles C: \
             install one (Debian/Ubuntu: sudo apt-get install gcc)\n"
                .to_string()
        )
    );
    stand_in(dir.path(), "rustc", "echo 'something else'");
    let (code, _, stderr) = install(dir.path());
    assert_eq!(code, Some(1));
    assert!(
        stderr.starts_with("install.sh: cannot tell the Rust version"),
        "{stderr}"
    );
}
