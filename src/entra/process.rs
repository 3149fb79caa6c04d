//! Running `az` and `azd` with a deadline. `azure_identity`'s own executor waits forever
//! for a hanging CLI; this one runs the child in its own process group with stdin closed
//! and its output captured (never printed), and kills the whole group when time is up
//! (how, per platform: `platform::own_process_group`, `platform::kill_tree`).

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use azure_identity::Executor;

#[derive(Debug)]
pub struct TimedExecutor {
    pub timeout: Duration,
}

#[async_trait::async_trait]
impl Executor for TimedExecutor {
    async fn run(&self, program: &OsStr, args: &[&OsStr]) -> std::io::Result<Output> {
        let program = program.to_os_string();
        let args: Vec<OsString> = args.iter().map(|a| a.to_os_string()).collect();
        let timeout = self.timeout;
        let (tx, rx) = futures::channel::oneshot::channel();
        std::thread::spawn(move || {
            let _ = tx.send(run_with_timeout(&program, &args, timeout));
        });
        rx.await
            .unwrap_or_else(|_| Err(std::io::Error::other("the command thread stopped")))
    }
}

pub fn run_with_timeout(
    program: &OsStr,
    args: &[OsString],
    timeout: Duration,
) -> std::io::Result<Output> {
    let mut child = crate::platform::own_process_group(&mut Command::new(program))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let readers: Vec<_> = [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .map(|pipe| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.by_ref().take(1 << 20).read_to_end(&mut buf);
            }
            buf
        })
    })
    .collect();
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            crate::platform::kill_tree(child.id());
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "{} {}s and was stopped",
                    crate::error::STOPPED_TEXT,
                    timeout.as_secs_f32()
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut outputs = readers.into_iter().map(|r| r.join().unwrap_or_default());
    Ok(Output {
        status,
        stdout: outputs.next().unwrap_or_default(),
        stderr: outputs.next().unwrap_or_default(),
    })
}

// The children are `/bin/sh` scripts.
#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn captures_output() {
        let out = run_with_timeout(
            OsStr::new("/bin/sh"),
            &["-c".into(), "echo out; echo err >&2; exit 3".into()],
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
        assert_eq!(out.status.code(), Some(3));
    }

    #[test]
    fn kills_a_hanging_child() {
        let err = run_with_timeout(
            OsStr::new("/bin/sh"),
            &["-c".into(), "sleep 30; echo late".into()],
            Duration::from_millis(200),
        )
        .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    }
}
