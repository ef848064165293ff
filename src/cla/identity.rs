//! Node identity: one Ed25519 key pair per node, kept in a PKCS#8 file.
//!
//! The key is the node's long-term identity. The QUIC convergence layer derives a
//! self-signed X.509 certificate from it at bind time (see `spec/cl-quic.md`,
//! "Identity and certificates"), so a peer that completes the TLS 1.3 handshake has
//! proven possession of the private key behind [`Identity::public_key`].
//!
//! On disk the key file holds the raw PKCS#8 v2 DER document (RFC 5958) produced by
//! `ring`, with Unix mode `0600`. A key file that group or others may read is refused.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use rustls::pki_types::PrivatePkcs8KeyDer;
use sha2::{Digest, Sha256};

/// Largest key file accepted, in bytes (an Ed25519 PKCS#8 document is 83–85 bytes).
const MAX_KEY_FILE_BYTES: u64 = 4096;

/// Errors from loading, creating or generating an [`Identity`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// Reading, writing, renaming or creating the directory of the key file failed.
    #[error("key file {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },
    /// The key file can be read by group or others (mode shown in octal); fix it with
    /// `chmod 600`.
    #[error("key file {path} has mode {mode:o}: readable by group/others, refusing to use it")]
    InsecurePermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits (`st_mode & 0o777`).
        mode: u32,
    },
    /// The key file is not an Ed25519 PKCS#8 document (or is larger than 4096 bytes).
    #[error("key file {path} is not a valid Ed25519 PKCS#8 key: {reason}")]
    BadKey {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The key generator failed (no system randomness).
    #[error("generating an Ed25519 key failed: {0}")]
    Generate(String),
}

/// An Ed25519 key pair identifying one node.
///
/// Cheap to clone (about 120 bytes). `Debug` prints only the fingerprint, never the
/// secret key.
#[derive(Clone)]
pub struct Identity {
    /// PKCS#8 v2 DER document holding the secret and public key.
    pkcs8_der: Vec<u8>,
    /// The raw 32-byte Ed25519 public key (RFC 8032 section 5.1.5).
    public_key: [u8; 32],
}

impl Identity {
    /// Generates a fresh Ed25519 identity in memory (nothing is written to disk).
    ///
    /// # Errors
    /// [`IdentityError::Generate`] if the system random generator fails.
    pub fn generate() -> Result<Identity, IdentityError> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519)
            .map_err(|e| IdentityError::Generate(e.to_string()))?;
        Self::from_key_pair(&key).map_err(IdentityError::Generate)
    }

    /// Loads the key at `path`, or creates a new one there if the file does not exist.
    ///
    /// Creation makes the parent directory (mode `0700` on Unix) if needed, writes the
    /// key to a temporary file with mode `0600` in the same directory, syncs it and
    /// links it into place without overwriting, so a crash never leaves a partial key
    /// file and two processes racing end up using the same key.
    ///
    /// # Errors
    /// - [`IdentityError::InsecurePermissions`] if an existing file is readable or
    ///   writable by group or others (Unix only),
    /// - [`IdentityError::BadKey`] if the file is not an Ed25519 PKCS#8 key,
    /// - [`IdentityError::Io`] for file-system failures,
    /// - [`IdentityError::Generate`] if no key could be generated.
    pub fn load_or_create(path: &Path) -> Result<Identity, IdentityError> {
        match Self::load(path) {
            Err(IdentityError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                Self::create(path)
            }
            other => other,
        }
    }

    /// Loads an existing key file (see [`Identity::load_or_create`] for the checks).
    ///
    /// # Errors
    /// As [`Identity::load_or_create`]; a missing file is [`IdentityError::Io`] with
    /// kind `NotFound`.
    pub fn load(path: &Path) -> Result<Identity, IdentityError> {
        let io_err = |source| IdentityError::Io {
            path: path.to_path_buf(),
            source,
        };
        let meta = fs::metadata(path).map_err(io_err)?;
        check_permissions(path, &meta)?;
        if meta.len() > MAX_KEY_FILE_BYTES {
            return Err(bad_key(path, "file larger than 4096 bytes"));
        }
        let der = fs::read(path).map_err(io_err)?;
        Self::from_pkcs8_der(&der).map_err(|reason| bad_key(path, &reason))
    }

    /// Builds an identity from an Ed25519 PKCS#8 DER document.
    ///
    /// # Errors
    /// A description of the problem if `der` is not an Ed25519 PKCS#8 key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Identity, String> {
        let pkcs8 = PrivatePkcs8KeyDer::from(der);
        let key = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8, &rcgen::PKCS_ED25519)
            .map_err(|e| e.to_string())?;
        Self::from_key_pair(&key)
    }

    fn from_key_pair(key: &rcgen::KeyPair) -> Result<Identity, String> {
        let public_key: [u8; 32] = key
            .public_key_raw()
            .try_into()
            .map_err(|_| "public key is not 32 bytes".to_string())?;
        Ok(Identity {
            pkcs8_der: key.serialize_der(),
            public_key,
        })
    }

    fn create(path: &Path) -> Result<Identity, IdentityError> {
        let identity = Self::generate()?;
        let io_err = |source| IdentityError::Io {
            path: path.to_path_buf(),
            source,
        };
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        create_private_dir(&dir).map_err(io_err)?;
        // tempfile creates the file with mode 0600 on Unix.
        let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(io_err)?;
        tmp.write_all(&identity.pkcs8_der).map_err(io_err)?;
        tmp.as_file().sync_all().map_err(io_err)?;
        match tmp.persist_noclobber(path) {
            Ok(_) => {
                // Make the new directory entry durable too (best effort on non-Unix).
                if let Ok(d) = fs::File::open(&dir) {
                    let _ = d.sync_all();
                }
                Ok(identity)
            }
            // Another process created the key first: use theirs.
            Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => Self::load(path),
            Err(e) => Err(io_err(e.error)),
        }
    }

    /// The raw 32-byte Ed25519 public key (RFC 8032 section 5.1.5).
    pub fn public_key(&self) -> [u8; 32] {
        self.public_key
    }

    /// Short printable name of the key: lowercase hex of the first 8 bytes of
    /// SHA-256(public key), i.e. 16 characters. Used for default node names.
    pub fn fingerprint(&self) -> String {
        fingerprint_of(&self.public_key)
    }

    /// The PKCS#8 v2 DER document (secret material: do not log it).
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8_der
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

/// Hex of the first 8 bytes of SHA-256 of `public_key` (see [`Identity::fingerprint`]).
pub fn fingerprint_of(public_key: &[u8; 32]) -> String {
    let digest = Sha256::digest(public_key);
    hex::encode(&digest[..8])
}

fn bad_key(path: &Path, reason: &str) -> IdentityError {
    IdentityError::BadKey {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

#[cfg(unix)]
fn check_permissions(path: &Path, meta: &fs::Metadata) -> Result<(), IdentityError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(IdentityError::InsecurePermissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path, _meta: &fs::Metadata) -> Result<(), IdentityError> {
    Ok(())
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_round_trips_through_pkcs8() {
        let id = Identity::generate().unwrap();
        let again = Identity::from_pkcs8_der(id.pkcs8_der()).unwrap();
        assert_eq!(id.public_key(), again.public_key());
        assert_eq!(id.fingerprint().len(), 16);
        assert!(!format!("{id:?}").contains(&hex::encode(id.pkcs8_der())));
    }

    #[test]
    fn garbage_is_a_bad_key_not_a_panic() {
        assert!(Identity::from_pkcs8_der(b"not a key").is_err());
        assert!(Identity::from_pkcs8_der(&[]).is_err());
    }
}
