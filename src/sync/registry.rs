//! The persisted folder registrations: `DATA_DIR/sync.json`, written
//! atomically on every change and read at start-up.

use super::SyncError;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// File name of the registry in the data directory.
pub const REGISTRY_FILE: &str = "sync.json";

/// An outgoing folder (`spore sync add`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outgoing {
    /// Folder name sent in manifests (unique per node).
    pub name: String,
    /// Absolute path of the watched directory.
    pub dir: PathBuf,
    /// Destination endpoint, e.g. `dtn://base/files`.
    pub to: String,
    /// Send tombstones for deleted files.
    #[serde(default)]
    pub propagate_deletes: bool,
}

/// Where folder content from a source lands (`spore sync accept`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accept {
    /// Source node ID prefix, e.g. `dtn://field/` (matches that node's
    /// bundles).
    pub from: String,
    /// Absolute directory; a folder `F` lands in `into/F/`.
    pub into: PathBuf,
}

/// Everything in `sync.json`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registry {
    /// Outgoing folders.
    #[serde(default)]
    pub outgoing: Vec<Outgoing>,
    /// Accept rules, first match wins.
    #[serde(default)]
    pub accept: Vec<Accept>,
}

impl Registry {
    /// Reads `dir/sync.json`; a missing file is an empty registry.
    ///
    /// # Errors
    /// [`SyncError::Io`] if unreadable, [`SyncError::State`] if not valid JSON.
    pub fn load(dir: &Path) -> Result<Registry, SyncError> {
        let path = dir.join(REGISTRY_FILE);
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| SyncError::State(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Registry::default()),
            Err(e) => Err(SyncError::io("read", &path)(e)),
        }
    }

    /// Writes `dir/sync.json` atomically (temp file, fsync, rename).
    ///
    /// # Errors
    /// [`SyncError::Io`].
    pub fn save(&self, dir: &Path) -> Result<(), SyncError> {
        use std::io::Write;
        let path = dir.join(REGISTRY_FILE);
        let io = SyncError::io("write", &path);
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(&io)?;
        let json = serde_json::to_vec_pretty(self).map_err(|e| SyncError::State(e.to_string()))?;
        tmp.write_all(&json).map_err(&io)?;
        tmp.as_file().sync_all().map_err(&io)?;
        tmp.persist(&path).map_err(|e| io(e.error))?;
        Ok(())
    }

    /// Adds or replaces (same name) an outgoing folder.
    pub fn add_outgoing(&mut self, o: Outgoing) {
        self.outgoing.retain(|x| x.name != o.name);
        self.outgoing.push(o);
    }

    /// Adds or replaces (same `from`) an accept rule.
    pub fn add_accept(&mut self, a: Accept) {
        self.accept.retain(|x| x.from != a.from);
        self.accept.push(a);
    }

    /// The directory for content from `source` (a bundle source EID):
    /// the `into` of the first rule whose `from` is a prefix of it.
    pub fn accept_dir(&self, source: &str) -> Option<&Path> {
        self.accept
            .iter()
            .find(|a| source.starts_with(&a.from))
            .map(|a| a.into.as_path())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_round_trips_and_matches_prefixes() {
        let d = tempfile::tempdir().unwrap();
        let mut r = Registry::default();
        r.add_outgoing(Outgoing {
            name: "photos".into(),
            dir: "/x".into(),
            to: "dtn://base/files".into(),
            propagate_deletes: false,
        });
        r.add_accept(Accept {
            from: "dtn://field/".into(),
            into: "/in".into(),
        });
        r.save(d.path()).unwrap();
        let back = Registry::load(d.path()).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.accept_dir("dtn://field/files"), Some(Path::new("/in")));
        assert_eq!(back.accept_dir("dtn://other/"), None);
    }
}
