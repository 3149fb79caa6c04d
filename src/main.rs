//! `docker-credential-acr-entra`: arguments, stdin, stdout and stderr go to `lib::run`;
//! nothing else.

use std::process::ExitCode;

fn main() -> ExitCode {
    // Lossy, not `std::env::args()`, which panics on an argument that is not UTF-8.
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let env = docker_credential_acr_entra::Env::from_process();
    docker_credential_acr_entra::set_statically_linked(cfg!(target_feature = "crt-static"));
    let code = docker_credential_acr_entra::run(
        &args,
        &mut std::io::stdin().lock(),
        &mut std::io::stdout().lock(),
        &mut std::io::stderr(),
        &env,
    );
    ExitCode::from(code)
}
