//! The tenant archive: one sealed file holding every object a tenant had, readable only with
//! Landlord's archive key, checked object by object when it is opened. Archiving, restoring,
//! retention and migration all go through this module; it knows nothing about the state
//! machine. [`export`](mod@export) reads the objects worth archiving from the API server, and
//! [`import`](mod@import) writes them back in dependency order and verifies them; both serve
//! migration too.
//!
//! # Format (version 1)
//!
//! A sealed archive is a short plain header followed by one AES-256-GCM ciphertext:
//!
//! ```text
//! "LLARCH" | version: u16 BE (1) | key id length: u8 | key id (ASCII) | nonce: 12 bytes | ciphertext + 16-byte tag
//! ```
//!
//! The header is in the clear so that the right key can be picked from the key ring before
//! anything is decrypted, and it is the AEAD's associated data, so changing a byte of it (the
//! key id, the version) fails decryption like changing the ciphertext does. The nonce is
//! random for every seal; the key is never used for more than a handful of archives per
//! tenant, far from GCM's 2^32 random-nonce limit.
//!
//! The plaintext is zstd-compressed JSON lines: the [`Manifest`] on the first line, then one
//! object per line in the manifest's order, each in canonical form (object keys sorted, no
//! whitespace), the same bytes its `sha256` is computed over. The manifest carries the tenant,
//! its plan and spec, the key id, the count of objects per `apiVersion/Kind`, an entry with the
//! sha256 of every object, and the sha256 of the whole (see [`whole_checksum`]). Volume data of
//! PersistentVolumeClaims is never included: claims are recorded with their spec only.
//!
//! [`open`] checks, in this order, that the header is ours, that the key is in the ring, that
//! the ciphertext is authentic, then every object's checksum, the counts and the whole
//! checksum; each failure is its own [`ArchiveError`] whose message says what to do.
//!
//! # Where archives live
//!
//! [`ArchiveStore`] writes `<prefix>/<tenant>/<timestamp>.llarch` (and a plain
//! `<timestamp>.manifest.json` beside it) to a directory or an S3-compatible bucket, and lists
//! archives from the store itself, so that retention can purge the archives of tenants that no
//! longer exist.

mod bundle;
pub mod export;
pub mod import;
pub mod inspect;
mod keys;
mod store;

pub use bundle::{
    Bundle, FORMAT_VERSION, MAGIC, Manifest, ObjectEntry, key_id_of, normalise, object_sha256,
    open, seal, verify, whole_checksum,
};
pub use export::{export, should_archive, strip_server_fields};
// `import::verify` keeps its module's name: `verify` here is the bundle's.
pub use import::{ImportReport, import, import_with, order};
pub use keys::{Key, KeyRing, load_or_create, ring_from_secret_data, rotate, secret_data};
pub use store::{ArchiveStore, S3Options, StoredArchive};

/// Everything that can go wrong with an archive. Messages name what failed and say what to do;
/// [`ArchiveError::reason`] gives a short CamelCase label for conditions, Events and metrics.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error(
        "not a Landlord archive (it does not start with LLARCH): check that the location names a .llarch file"
    )]
    NotAnArchive,
    #[error(
        "archive format version {found} is not supported (this Landlord reads version {supported}): open it with a Landlord release that writes version {found}"
    )]
    UnsupportedVersion { found: u16, supported: u16 },
    #[error(
        "the archive was sealed with key {key_id}, which the key ring does not hold (it holds {known}): put the entry key-{key_id} back into the archive key Secret"
    )]
    UnknownKey { key_id: String, known: String },
    #[error(
        "the archive could not be decrypted with key {key_id}: the Secret's key-{key_id} is not the key that sealed it, or the archive was altered; restore the original key or another copy of the archive"
    )]
    Decrypt { key_id: String },
    #[error("the archive is corrupted ({0}): restore it from another copy")]
    Corrupt(String),
    #[error("checksum mismatch: {} differ from what was archived; do not restore from this archive", .objects.join(", "))]
    ObjectChecksum { objects: Vec<String> },
    #[error("object counts differ from the manifest ({}); do not restore from this archive", .details.join("; "))]
    CountMismatch { details: Vec<String> },
    #[error(
        "the archive's overall checksum is {found} but its manifest says {expected}; do not restore from this archive"
    )]
    WholeChecksum { expected: String, found: String },
    #[error("object {index} cannot be archived: {reason}")]
    InvalidObject { index: usize, reason: String },
    #[error("{object} is in the export twice: an object may be archived once only")]
    DuplicateObject { object: String },
    #[error(
        "the archive store {url} is unavailable: {source}; check that it is reachable and writable, Landlord retries"
    )]
    StoreUnavailable {
        url: String,
        #[source]
        source: Box<object_store::Error>,
    },
    #[error(
        "there is no archive at {location}: it was purged or never completed, so nothing can be restored from it"
    )]
    NotFound { location: String },
    #[error("archive store URL {url} is not usable: {reason}")]
    StoreUrl { url: String, reason: String },
    #[error("{location} is not in the archive store {url}")]
    ForeignLocation { location: String, url: String },
    #[error(
        "the archive key Secret {namespace}/{name} could not be read or written: {source}; check the operator's RBAC for Secrets in {namespace}"
    )]
    KeySecret {
        namespace: String,
        name: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("the archive key Secret {namespace}/{name} is not usable: {reason}")]
    BadKeySecret {
        namespace: String,
        name: String,
        reason: String,
    },
    #[error(
        "the tenant's objects could not be exported: reading {what} failed: {source}; check that the API server and its aggregated APIs answer and that Landlord may list every kind, Landlord retries"
    )]
    Export {
        what: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("{object} could not be restored: {message}")]
    Import { object: String, message: String },
    #[error(
        "{} restored object(s) differ from the archive: {}; find what changed them (a controller, an admission webhook) and restore again", .objects.len(), shown(.objects)
    )]
    VerifyFailed { objects: Vec<String> },
}

/// The first few of a long list of objects, and how many more there are: a condition's
/// message stays readable when a thousand objects differ.
fn shown(objects: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut text = objects[..objects.len().min(SHOWN)].join(", ");
    if objects.len() > SHOWN {
        text.push_str(&format!(" and {} more", objects.len() - SHOWN));
    }
    text
}

impl ArchiveError {
    /// A short CamelCase label: a condition reason, an Event reason, a metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotAnArchive | Self::Corrupt(_) => "ArchiveCorrupted",
            Self::UnsupportedVersion { .. } => "ArchiveVersionUnsupported",
            Self::UnknownKey { .. } => "ArchiveKeyMissing",
            Self::Decrypt { .. } => "ArchiveKeyWrong",
            Self::ObjectChecksum { .. }
            | Self::CountMismatch { .. }
            | Self::WholeChecksum { .. } => "ArchiveChecksumMismatch",
            Self::InvalidObject { .. } | Self::DuplicateObject { .. } => "ArchiveInvalidObject",
            Self::StoreUnavailable { .. } => "ArchiveStoreUnavailable",
            Self::NotFound { .. } => "ArchiveNotFound",
            Self::StoreUrl { .. } | Self::ForeignLocation { .. } => "ArchiveStoreMisconfigured",
            Self::KeySecret { .. } | Self::BadKeySecret { .. } => "ArchiveKeyUnavailable",
            Self::Export { .. } => "ArchiveExportFailed",
            Self::Import { .. } => "RestoreFailed",
            Self::VerifyFailed { .. } => "RestoreVerificationFailed",
        }
    }
}
