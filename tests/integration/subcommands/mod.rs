//! The subcommands beyond the credential-helper protocol, one file each: `configure`,
//! `doctor`, `kubelet` and `token`, run as the built binary against loopback fakes.

mod configure;
mod doctor;
mod kubelet;
mod token;
