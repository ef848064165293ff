//! Services a node offers (config section `[[service]]`) and job settings.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What runs a service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ServiceKind {
    /// A command: the job input on stdin, the result from stdout.
    Exec {
        /// argv: program and arguments (no shell unless argv says `sh -c`).
        command: Vec<String>,
        /// Killed after this long, ms (default 60 000).
        #[serde(default = "default_time_limit_ms")]
        time_limit_ms: u64,
        /// Longest output kept; more is an `over limits` error, bytes
        /// (default 8 MiB).
        #[serde(default = "default_max_output_bytes")]
        max_output_bytes: u64,
    },
    /// An HTTP endpoint speaking the Ollama API: a job's input (the JSON
    /// request body) is forwarded to `URL/api/<endpoint>` and the answer
    /// is the result; its models are advertised on contact.
    Ollama {
        /// Base URL, e.g. `http://127.0.0.1:11434`.
        url: String,
        /// Models it serves.
        #[serde(default)]
        models: Vec<String>,
    },
}

fn default_time_limit_ms() -> u64 {
    60_000
}

fn default_max_output_bytes() -> u64 {
    8 << 20
}

fn default_concurrency() -> usize {
    1
}

fn default_queue_bound() -> usize {
    64
}

/// One service (config `[[service]]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceConfig {
    /// Name jobs ask for (`[A-Za-z0-9._-]`, ≤ 64 bytes).
    pub name: String,
    /// How it runs (flattened: `kind = "exec"`, `command = [...]`, ...).
    #[serde(flatten)]
    pub kind: ServiceKind,
    /// Jobs run at once (default 1).
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Jobs waiting for a slot beyond which new ones are refused `busy`
    /// (default 64).
    #[serde(default = "default_queue_bound")]
    pub queue_bound: usize,
}

/// Job settings of a node: the services it offers and the real-time RTT
/// threshold. Config: the top-level `[[service]]` array and the `[jobs]`
/// section (spec/config.md).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobsConfig {
    /// Services offered (none by default).
    #[serde(rename = "service")]
    pub services: Vec<ServiceConfig>,
    /// Largest smoothed RTT of a peer that may take a real-time job, ms
    /// (default 150).
    pub realtime_rtt_ms: u64,
    /// Lifetime of result bundles, ms (default 7 days).
    pub result_lifetime_ms: u64,
    /// Real-time jobs accepted per second from one peer (default 10; `governor`).
    pub realtime_jobs_per_s: u32,
    /// Burst of real-time jobs accepted from one peer (default 20); beyond
    /// rate and burst they are answered `refused_busy` with the reason.
    pub realtime_burst: u32,
}

impl Default for JobsConfig {
    fn default() -> JobsConfig {
        JobsConfig {
            services: Vec::new(),
            realtime_rtt_ms: 150,
            result_lifetime_ms: 7 * 24 * 3600 * 1000,
            realtime_jobs_per_s: 10,
            realtime_burst: 20,
        }
    }
}

/// Why a services file could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServicesFileError {
    /// Cannot read the file.
    #[error("cannot read services file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Not JSON of the expected shape.
    #[error("services file {path}: {detail}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A service is invalid (bad name, empty command, zero concurrency, duplicate).
    #[error("service {name:?}: {detail}")]
    Invalid {
        /// Service name.
        name: String,
        /// What is wrong.
        detail: String,
    },
}

impl JobsConfig {
    /// Loads services from a JSON file: an array of [`ServiceConfig`]
    /// objects, the same shape as the TOML `[[service]]` tables of the
    /// config file (`spore node --services FILE`, which replaces the config
    /// file's services; spec/config.md).
    ///
    /// # Errors
    /// [`ServicesFileError`]: unreadable, not JSON, or an invalid service.
    pub fn load_services(path: &Path) -> Result<Vec<ServiceConfig>, ServicesFileError> {
        let b = std::fs::read(path).map_err(|source| ServicesFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let v: Vec<ServiceConfig> =
            serde_json::from_slice(&b).map_err(|e| ServicesFileError::Parse {
                path: path.to_path_buf(),
                detail: e.to_string(),
            })?;
        validate(&v)?;
        Ok(v)
    }

    /// The service named `name`.
    pub fn service(&self, name: &str) -> Option<&ServiceConfig> {
        self.services.iter().find(|s| s.name == name)
    }
}

/// Checks names, commands, limits and duplicates.
///
/// # Errors
/// [`ServicesFileError::Invalid`] for the first bad service.
///
/// # Errors
/// [`ServicesFileError::Invalid`]-style errors naming the first bad
/// service (bad name, empty command, zero concurrency, duplicate).
pub fn validate(services: &[ServiceConfig]) -> Result<(), ServicesFileError> {
    let bad = |s: &ServiceConfig, d: &str| ServicesFileError::Invalid {
        name: s.name.clone(),
        detail: d.to_owned(),
    };
    for (i, s) in services.iter().enumerate() {
        super::check_service_name(&s.name).map_err(|e| bad(s, &e.to_string()))?;
        if s.concurrency == 0 {
            return Err(bad(s, "concurrency must be at least 1"));
        }
        if let ServiceKind::Exec { command, .. } = &s.kind {
            if command.is_empty() {
                return Err(bad(s, "command is empty"));
            }
        }
        if services[..i].iter().any(|o| o.name == s.name) {
            return Err(bad(s, "defined twice"));
        }
    }
    Ok(())
}
