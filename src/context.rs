//! What every verb works with: the settings and the config file (`Context`), and the
//! helper's private directory as the verb finds it (`Dir`: checked and open, not there
//! yet, or not to be trusted).

use std::time::Duration;

use crate::config::{FileConfig, Settings};
use crate::error::{Error, Result};
use crate::private_dir::PrivateDir;

/// Settings plus the config file: what every verb needs.
#[derive(Debug)]
pub struct Context {
    pub settings: Settings,
    pub config: FileConfig,
}

/// The private directory as a verb finds it.
#[derive(Debug)]
pub enum Dir {
    /// Open and checked: the cache and the store are read and written through it.
    Ready(PrivateDir),
    /// Not there yet (or no location at all): nothing stored or cached; created when a
    /// mint or `store` has something to write.
    Missing,
    /// There but not to be trusted (a symbolic link, another user's, open to others):
    /// nothing is read from or written to it.
    Unusable,
}

impl Dir {
    pub fn get(&self) -> Option<&PrivateDir> {
        match self {
            Dir::Ready(dir) => Some(dir),
            Dir::Missing | Dir::Unusable => None,
        }
    }
}

impl Context {
    pub fn load(settings: Settings) -> Result<Context> {
        let config = match &settings.config_path {
            Some(path) => FileConfig::load(path, settings.config_named)?,
            None => FileConfig::default(),
        };
        Ok(Context { settings, config })
    }

    /// `load` for a request no config file could concern (a host that is not an ACR
    /// login server, so only a `registries` entry could give it tokens, and a file that
    /// cannot be read lists nothing for sure; or `list`, which then lists what is
    /// stored): a config file that cannot be used is set aside with one warning,
    /// "`ERROR`; `doing` without the config file", instead of failing. With the helper as
    /// docker's `credsStore`, every Docker Hub pull, login and logout asks it, and a typo
    /// in a file about ACR registries must not break those; requests about ACR hosts
    /// still fail on it.
    pub fn load_setting_aside(settings: Settings, doing: &str) -> Result<Context> {
        let Some(path) = settings.config_path.as_deref() else {
            return Context::load(settings);
        };
        match FileConfig::load(path, settings.config_named) {
            Ok(config) => Ok(Context { settings, config }),
            Err(e) => {
                crate::log::tell(format_args!(
                    "{}; {doing} without the config file",
                    e.one_line()
                ));
                let config = FileConfig {
                    path: Some(path.to_path_buf()),
                    ..FileConfig::default()
                };
                Ok(Context { settings, config })
            }
        }
    }

    /// The private directory for reading: an untrusted one is ignored with a warning
    /// (anyone could have planted tokens or credentials there), and `get` then mints
    /// without the cache. `store` fails loudly on it instead (`created_dir`).
    pub fn private_dir(&self) -> Dir {
        match self.open_dir() {
            Ok(Some(dir)) => Dir::Ready(dir),
            Ok(None) => Dir::Missing,
            // Said whatever ACR_ENTRA_LOG is: without the cache every `get` mints, and
            // nothing else would tell why pulls became slow.
            Err(e) => {
                crate::log::tell(format_args!(
                    "cache unusable, minting without it (and ignoring stored credentials): {}",
                    e.one_line()
                ));
                Dir::Unusable
            }
        }
    }

    /// The private directory if it exists, or why it cannot be trusted (for `doctor`).
    pub fn open_dir(&self) -> Result<Option<PrivateDir>> {
        match self.settings.cache_dir.as_deref() {
            Some(path) => PrivateDir::open(path),
            None => Ok(None),
        }
    }

    /// The private directory for writing, created if missing; an error when there is no
    /// location or it cannot be trusted.
    pub fn created_dir(&self) -> Result<PrivateDir> {
        let path = self.settings.cache_dir.as_deref().ok_or_else(no_dir)?;
        PrivateDir::create(path)
    }

    /// How long to wait for another process's lock: longer than the slowest mint it may
    /// be doing (see `mint::worst_case`), plus a margin.
    pub fn lock_timeout(&self) -> Duration {
        crate::mint::worst_case(&self.settings) + Duration::from_secs(2)
    }

    /// How long to wait for the stored credentials' lock: its holders read and write one
    /// small file and make no network request, so a few of `ACR_ENTRA_TIMEOUT` is plenty
    /// and a stuck holder is reported soon.
    pub fn store_lock_timeout(&self) -> Duration {
        self.settings.timeout * 3 + Duration::from_secs(2)
    }
}

fn no_dir() -> Error {
    Error::Config(
        "no directory for stored credentials: set ACR_ENTRA_CACHE_DIR, XDG_CACHE_HOME or HOME"
            .into(),
    )
}
