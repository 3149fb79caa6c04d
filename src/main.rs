//! `docker-credential-acr-entra`: arguments, stdin and stdout go to `lib::run`; nothing else.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let env = docker_credential_acr_entra::config::Env::from_process();
    let code = docker_credential_acr_entra::run(
        &args,
        &mut std::io::stdin().lock(),
        &mut std::io::stdout().lock(),
        &env,
    );
    ExitCode::from(code)
}
