//! A small stderr logger: `ACR_ENTRA_LOG` picks the level (`error`, `warn`, `info`,
//! `debug`, `trace`; off by default). Lines go to stderr only — stdout belongs to the
//! protocol — and callers pass host names, kinds, paths and timings, never secrets.

use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Off = 0,
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
    Trace = 5,
}

impl Level {
    pub fn parse(text: &str) -> Option<Level> {
        Some(match text.trim().to_ascii_lowercase().as_str() {
            "off" | "none" | "0" => Level::Off,
            "error" => Level::Error,
            "warn" | "warning" => Level::Warn,
            "info" => Level::Info,
            "debug" | "1" => Level::Debug,
            "trace" => Level::Trace,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Level::Off => "off",
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
            Level::Trace => "trace",
        }
    }
}

static LEVEL: AtomicU8 = AtomicU8::new(Level::Off as u8);

pub fn set_level(level: Level) {
    LEVEL.store(level as u8, Ordering::Relaxed);
}

pub fn enabled(level: Level) -> bool {
    level as u8 <= LEVEL.load(Ordering::Relaxed) && level != Level::Off
}

/// Write one line to stderr. Errors writing stderr are ignored: logging must never fail
/// a credential lookup.
pub fn write(level: Level, args: std::fmt::Arguments<'_>) {
    if enabled(level) {
        emit(level, args);
    }
}

/// A warning that must reach stderr whatever `ACR_ENTRA_LOG` says: a subcommand people run
/// by hand (`token`) doing something that will not work as asked, or `get` deliberately
/// answering "no credentials" for a registry that allows anonymous pulls.
pub fn tell(args: std::fmt::Arguments<'_>) {
    emit(Level::Warn, args);
}

fn emit(level: Level, args: std::fmt::Arguments<'_>) {
    let line = crate::error::one_line(&args.to_string());
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "acr-entra {}: {line}", level.name());
}

#[macro_export]
macro_rules! warn {
    ($($t:tt)*) => { $crate::log::write($crate::log::Level::Warn, format_args!($($t)*)) };
}
#[macro_export]
macro_rules! info {
    ($($t:tt)*) => { $crate::log::write($crate::log::Level::Info, format_args!($($t)*)) };
}
#[macro_export]
macro_rules! debug {
    ($($t:tt)*) => { $crate::log::write($crate::log::Level::Debug, format_args!($($t)*)) };
}
#[macro_export]
macro_rules! trace {
    ($($t:tt)*) => { $crate::log::write($crate::log::Level::Trace, format_args!($($t)*)) };
}
