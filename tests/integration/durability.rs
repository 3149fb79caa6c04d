//! Durability: SIGKILL at random points of `store` and of a minting `get` leaves
//! every cache and store file parseable with the old or the new content; files are
//! 0600 and the directory 0700 even under `umask 000` (created with those modes); and a
//! cache directory that is group/world-writable is refused — `get` mints without it and
//! warns, never trusting what is planted there, while `store` fails loudly.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::env::bin;
use crate::support::rng::Lcg;
use crate::support::world::{CLIENT, SECRET, TENANT};
use crate::support::*;

const HOST: &str = "myacr.azurecr.io";

/// Start the helper with `env` and `stdin`, SIGKILL it after `delay`, reap it.
fn run_and_kill(env: &[(String, String)], verb: &str, stdin: &[u8], delay: Duration) -> bool {
    let mut child = Command::new(bin())
        .arg(verb)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin_pipe = child.stdin.take().unwrap();
        let _ = stdin_pipe.write_all(stdin);
    }
    let start = Instant::now();
    while start.elapsed() < delay {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        thread::sleep(Duration::from_micros(200));
    }
    let killed = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    killed
}

fn base_env(env: &TestEnv) -> Vec<(String, String)> {
    vec![
        ("HOME".into(), env.home.display().to_string()),
        ("PATH".into(), "/usr/bin:/bin".into()),
        (
            "ACR_ENTRA_CACHE_DIR".into(),
            env.cache.display().to_string(),
        ),
        ("SSL_CERT_FILE".into(), env.ca_pem.display().to_string()),
    ]
}

/// Every `credentials.json` and cache JSON in `dir` parses; returns the store's
/// secret for ghcr.io, if any.
fn check_dir(dir: &Path) -> Option<String> {
    let mut secret = None;
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !name.ends_with(".json") {
            continue;
        }
        let bytes = fs::read(entry.path()).unwrap();
        let v: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("`{name}` is corrupt after SIGKILL: {e}: {bytes:?}"));
        assert_eq!(v["version"], 1, "{name}");
        if name == "credentials.json" {
            let entries = v["entries"].as_array().unwrap();
            assert_eq!(entries.len(), 1, "{v}");
            secret = entries[0]["secret"].as_str().map(str::to_string);
        } else if name.starts_with("token-") {
            assert!(
                !v["refresh_token"].as_str().unwrap_or_default().is_empty(),
                "{v}"
            );
        }
    }
    secret
}

fn temp_files(dir: &Path) -> usize {
    fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .count()
}

fn store_json(secret: &str) -> String {
    format!(r#"{{"ServerURL":"ghcr.io","Username":"octo","Secret":"{secret}"}}"#)
}

/// SIGKILL `store` at random points, `iterations` times: the file always parses and
/// holds the previous or the new secret.
fn store_crash_loop(iterations: u32) -> (u32, usize) {
    let env = TestEnv::new();
    let vars = base_env(&env);
    let first = env
        .helper()
        .arg("store")
        .stdin(store_json("secret-0000"))
        .run();
    assert_eq!(first.code, Some(0), "{first:?}");
    let mut committed = "secret-0000".to_string();
    let mut rng = Lcg(0x5eed);
    let mut killed = 0;
    for i in 1..=iterations {
        let new = format!("secret-{i:04}");
        // Debug builds take ~2-8 ms for a store; spread kills over 0-10 ms.
        let delay = Duration::from_micros(rng.next(10_000));
        if run_and_kill(&vars, "store", store_json(&new).as_bytes(), delay) {
            killed += 1;
        }
        let now = check_dir(&env.cache).expect("credentials.json exists");
        assert!(
            now == committed || now == new,
            "iteration {i}: `{now}` is neither `{committed}` nor `{new}`"
        );
        committed = now;
    }
    (killed, temp_files(&env.cache))
}

#[test]
// The figures go to the README's Security section.
#[allow(clippy::print_stderr)]
fn sigkill_during_store_never_corrupts_credentials() {
    let (killed, leftovers) = store_crash_loop(1000);
    eprintln!(
        "crash loop (store): 1000 iterations, {killed} killed mid-run, 0 corrupt files, {leftovers} temp files left"
    );
    assert!(
        killed > 100,
        "too few kills landed inside the run: {killed}"
    );
}

#[test]
#[allow(clippy::print_stderr)]
fn sigkill_during_minting_get_never_corrupts_the_cache() {
    let w = World::start(HOST);
    let (env, entra, acr) = (&w.env, &w.entra, &w.acr);
    let mut vars = base_env(env);
    vars.extend(
        [
            ("ACR_ENTRA_CREDENTIAL", "client-secret".to_string()),
            ("AZURE_AUTHORITY_HOST", entra.authority()),
            ("AZURE_CLIENT_ID", CLIENT.to_string()),
            ("AZURE_CLIENT_SECRET", SECRET.to_string()),
            ("AZURE_TENANT_ID", TENANT.to_string()),
            ("ACR_ENTRA_CONNECT_TO", acr.connect_to()),
            // Every get re-mints and rewrites the cache: the fake's tokens live ~3 h.
            ("ACR_ENTRA_MIN_TTL", "5h".to_string()),
        ]
        .map(|(k, v)| (k.to_string(), v)),
    );
    // How long one mint takes here, to spread the kills over it.
    let t = Instant::now();
    let out = w.get().env("ACR_ENTRA_MIN_TTL", "5h").run();
    assert_eq!(out.code, Some(0), "{out:?}");
    let span = (t.elapsed().as_micros() as u64 * 3 / 2).max(1000);
    let iterations = 200;
    let mut rng = Lcg(0xcafe);
    let mut killed = 0;
    for _ in 0..iterations {
        if run_and_kill(
            &vars,
            "get",
            HOST.as_bytes(),
            Duration::from_micros(rng.next(span)),
        ) {
            killed += 1;
        }
        check_dir(&env.cache);
    }
    // The cache still answers after all that.
    let out = w.get().run();
    assert_eq!(out.code, Some(0), "{out:?}");
    eprintln!(
        "crash loop (minting get): {iterations} iterations over {span} µs, {killed} killed mid-run, 0 corrupt files, {} temp files left",
        temp_files(&env.cache)
    );
}

#[test]
#[ignore = "long: 10,000 kills; run with --ignored for the README figure"]
#[allow(clippy::print_stderr)]
fn sigkill_during_store_long() {
    let (killed, leftovers) = store_crash_loop(10_000);
    eprintln!(
        "crash loop (store, long): 10000 iterations, {killed} killed, 0 corrupt, {leftovers} temp files"
    );
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn files_are_private_even_under_umask_000() {
    let w = World::start(HOST);
    let env = &w.env;
    let cache = env.path("fresh/acr-entra");
    // Through /bin/sh to set the umask first, so only modes given at creation can
    // explain private files.
    let run = |verb: &str, stdin: &str| {
        let out = w
            .helper()
            .wrapped(&["/bin/sh", "-c", "umask 000; exec \"$0\" \"$@\""])
            .arg(verb)
            .stdin(stdin)
            .env("ACR_ENTRA_CACHE_DIR", cache.display().to_string())
            .run();
        assert_eq!(out.code, Some(0), "{verb}: {out:?}");
    };
    run("get", HOST);
    run("store", &store_json("pw-umask"));
    assert_eq!(mode(&cache), 0o700, "cache directory");
    assert_eq!(
        mode(&env.path("fresh")),
        0o700,
        "parents created by the helper too"
    );
    let mut files = 0;
    for entry in fs::read_dir(&cache).unwrap().flatten() {
        assert_eq!(mode(&entry.path()), 0o600, "{}", entry.path().display());
        files += 1;
    }
    assert!(
        files >= 4,
        "token, host, lock and credentials files: {files}"
    );
}

#[test]
fn open_cache_dir_is_refused_get_mints_without_it_and_store_fails_loudly() {
    let w = World::start(HOST);
    let (env, acr) = (&w.env, &w.acr);
    let get = |log: &str| w.get().env("ACR_ENTRA_LOG", log).run();
    get("off").assert_answer(HOST, &acr.issued()[0]);
    let stored = env
        .helper()
        .arg("store")
        .stdin(store_json("pw-before"))
        .run();
    assert_eq!(stored.code, Some(0), "{stored:?}");
    // Someone opens the directory to the world (or it was created that way).
    fs::set_permissions(&env.cache, fs::Permissions::from_mode(0o777)).unwrap();
    let before = fs::read_dir(&env.cache).unwrap().count();

    // get: never trusts the cached token (it could have been planted), mints afresh,
    // writes nothing there, warns on stderr.
    let out = get("warn");
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.stdout,
        format!("{}\n", answer_json(HOST, &acr.issued()[1])),
        "minted, not read from the open directory"
    );
    assert!(
        out.stderr.contains("cache unusable") && out.stderr.contains("chmod 700"),
        "{out:?}"
    );
    assert!(!out.stderr.contains(&acr.issued()[1]));
    assert_eq!(fs::read_dir(&env.cache).unwrap().count(), before);
    // Without logging, the one warning that says why every get mints, and the same
    // kind of answer.
    let out = get("off");
    assert_eq!(out.code, Some(0), "{out:?}");
    out.assert_warned("cache unusable, minting without it (and ignoring stored credentials)");

    // get for a stored host: what is in the open directory is not served.
    let out = env.get("ghcr.io").run();
    assert_eq!(
        (out.code, out.stdout_line()),
        (Some(1), env::NOT_FOUND),
        "{out:?}"
    );
    out.assert_warned("cache unusable");
    // list does not show it either.
    let out = env.helper().arg("list").run();
    assert_eq!(out.stdout.trim(), "{}", "{out:?}");

    // store: fails loudly, names the directory and the fix.
    let out = env
        .helper()
        .arg("store")
        .stdin(store_json("pw-after"))
        .run();
    let line = out.assert_loud_error();
    assert!(
        line.contains("chmod 700") && line.contains(&env.cache.display().to_string()),
        "{line}"
    );
    assert!(!line.contains("pw-after"));

    // Put right again, everything works as before.
    fs::set_permissions(&env.cache, fs::Permissions::from_mode(0o700)).unwrap();
    env.get("ghcr.io")
        .run()
        .assert_answer_as("ghcr.io", "octo", "pw-before");
}
