//! The emulator's state in SQLite: users, sessions and the access-token signing seed. This is
//! the only module that touches SQL.
//!
//! * **One writer.** A dedicated thread owns the read-write connection. Requests queue their
//!   work on a channel; the thread takes everything queued (up to [`MAX_BATCH`]), runs each
//!   piece in its own savepoint inside one transaction, commits, and only then answers each
//!   caller (group commit). Every sign-in, refresh, revoke and sign-out is therefore committed
//!   before its HTTP answer is sent, and the commit cost is shared by all requests queued
//!   while the previous commit ran.
//! * **Readers.** With a database file, reads run on a small pool of separate connections in
//!   `spawn_blocking` (WAL lets them read while the writer writes). In memory, reads go
//!   through the writer thread (one connection holds the database).
//! * **Durability.** WAL with `synchronous=NORMAL`: a commit is written to the WAL file (the OS
//!   page cache) before it returns, so it survives `kill -9` of the emulator; it is not
//!   fsynced at every commit, so a power cut can lose the last commits (the database stays
//!   consistent).
//! * **Checkpoints off the writer.** The writer never checkpoints (`wal_autocheckpoint=0`): a
//!   checkpointer thread with its own connection copies the WAL into the database every
//!   200 ms (the fsyncs of `synchronous=NORMAL` happen there). When the WAL passes 64 MiB it
//!   holds the writer between two transactions for one last pass, so the WAL restarts.
//! * **Exclusive.** An advisory lock (`flock`) on the database file, held while the store is
//!   open, makes a second emulator on the same file refuse to start.
//! * **Foreign files are left alone.** Before any pragma or write, the file is looked at
//!   read-only (`check_ours`): it must be empty or an emulator state database: SQLite's
//!   `application_id` [`APPLICATION_ID`] (`cbte`, set when the schema is created), or, for a
//!   database made before that id was set, schema version 1 with exactly the emulator's
//!   tables. Another application's SQLite database (whatever its `user_version` or table
//!   names), or any other file, is refused byte-identical, in its own journal mode, with no
//!   `-wal`/`-shm` left; so is one of ours of a newer schema version (refused as such).
//! * **A JSON state file of an earlier version** is checked whole (format, env, signing key,
//!   users, refresh tokens) before it is renamed to `PATH.v1.json`; a bad one is refused where
//!   it is. A database without a signing seed next to a `PATH.v1.json` (a start that stopped
//!   between the rename and the import) imports it on the next start.
//! * **Bounded.** A refresh token is one column of its session: rotating it overwrites the old
//!   hash (a used token is gone at once). Sessions are deleted when they end (sign-out, revoke,
//!   the per-user cap, expiry via [`Store::prune`]), so the database holds live sessions only.
//!
//! Schema version 1 (`PRAGMA user_version`; `PRAGMA application_id` 0x63627465):
//!
//! | table | columns |
//! |---|---|
//! | `meta` | `key`, `value`: `env`, `access_token_seed` (32 bytes), `created_at_ms` |
//! | `users` | `id`, `sub` (unique), `uid` (unique), `created_at_ms`, `last_sign_in_ms` (as of the user's last ended session: a sign-in does not rewrite the user's row; the newest live session's `created_at_ms` counts too) |
//! | `sessions` | `id` (never reused), `user_id`, `created_at_ms`, `refreshed_at_ms`, `refresh_hash` (SHA-256 of the refresh token's secret), `refresh_expires_at_ms`, `ends_at_ms`, `access_ttl_ms` |
//! | `legacy_refresh` | `hash`, `session_id`: refresh tokens imported from a JSON state file |

use std::fs::File;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, RwLock};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rusqlite::{Connection, OpenFlags, OptionalExtension as _, params};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

use super::EmulatorError;
use crate::text::io_words;

/// The schema version this code writes ([`MIGRATIONS`] has one entry per version).
pub(crate) const SCHEMA_VERSION: i64 = 1;
/// `PRAGMA application_id` of an emulator state database: the bytes `cbte` (big-endian, as
/// SQLite stores it at offset 68 of the header). Set when the schema is created (and on the
/// first open of a database made before it was set), so that "is this file ours?" does not
/// rest on table names another application could use too.
pub(crate) const APPLICATION_ID: i64 = 0x6362_7465;
/// The tables of schema version 1 (besides SQLite's own `sqlite_*`), sorted.
const TABLES_V1: &[&str] = &["legacy_refresh", "meta", "sessions", "users"];
/// Most pieces of work committed in one transaction.
const MAX_BATCH: usize = 512;
/// Most sessions deleted by one pruning transaction (the writer is not held longer).
const PRUNE_CHUNK: i64 = 2_000;
/// Most idle read connections kept.
const MAX_IDLE_READERS: usize = 4;
/// Page cache per connection: 8 MiB (negative: KiB).
const CACHE_SIZE_KIB: i64 = 8 * 1024;
/// The WAL file is truncated back to this size when it is restarted.
const JOURNAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;
/// How often the checkpointer copies committed WAL frames into the database file.
const CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(200);
/// WAL frames (pages) past which the checkpointer pauses the writer between two
/// transactions, catches up, and so lets the WAL restart from its beginning (64 MiB of 4 KiB
/// pages). Under constant writes the WAL never restarts on its own.
const WAL_RESTART_FRAMES: i64 = 16_384;

/// Migrations: `MIGRATIONS[n]` takes the schema from version `n` to `n + 1`.
const MIGRATIONS: &[&str] = &["
    CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
    CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        sub TEXT NOT NULL UNIQUE,
        uid TEXT NOT NULL UNIQUE,
        created_at_ms INTEGER NOT NULL,
        last_sign_in_ms INTEGER NOT NULL
    );
    CREATE TABLE sessions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id INTEGER NOT NULL,
        created_at_ms INTEGER NOT NULL,
        refreshed_at_ms INTEGER,
        refresh_hash BLOB NOT NULL,
        refresh_expires_at_ms INTEGER NOT NULL,
        ends_at_ms INTEGER NOT NULL,
        access_ttl_ms INTEGER NOT NULL
    );
    CREATE INDEX sessions_by_user ON sessions (user_id, id);
    CREATE INDEX sessions_by_expiry ON sessions (refresh_expires_at_ms);
    CREATE TABLE legacy_refresh (
        hash BLOB PRIMARY KEY,
        session_id INTEGER NOT NULL
    ) WITHOUT ROWID;
"];

/// A user's last sign-in: the column (kept up to date as sessions end) or the newest live
/// session, whichever is later. `u` is the users table.
const LAST_SIGN_IN: &str = "max(u.last_sign_in_ms, coalesce((SELECT s.created_at_ms FROM sessions s
     WHERE s.user_id = u.id ORDER BY s.id DESC LIMIT 1), 0))";

/// Random bytes from the OS.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    if getrandom::fill(&mut out).is_err() {
        // The OS generator failing is not recoverable; never hand out predictable tokens.
        std::process::abort();
    }
    out
}

/// SHA-256 of `bytes`.
pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// A database failure while serving (the request gets a 503).
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum StoreError {
    /// SQLite refused (disk full, I/O error, …).
    #[error("the state database failed: {0}")]
    Sqlite(String),
    /// The store is shutting down.
    #[error("the state database is closed")]
    Closed,
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Sqlite(e.to_string())
    }
}

/// A user, as the handlers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct User {
    pub(crate) sub: String,
    pub(crate) uid: String,
    pub(crate) created_at_ms: u64,
}

/// What a new sign-in needs.
#[derive(Debug, Clone)]
pub(crate) struct NewSession {
    pub(crate) uid: String,
    pub(crate) now_ms: u64,
    /// SHA-256 of the refresh token's secret.
    pub(crate) refresh_hash: [u8; 32],
    pub(crate) refresh_expires_at_ms: u64,
    /// When the session ends whatever happens (the ticket's `expire`).
    pub(crate) ends_at_ms: u64,
    /// Most live sessions per user; the oldest beyond it are ended.
    pub(crate) max_sessions_per_user: u32,
    /// Lifetime of the session's access tokens.
    pub(crate) access_ttl_ms: u64,
}

/// A session that was created or refreshed.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) id: i64,
    pub(crate) user: User,
    pub(crate) ends_at_ms: u64,
    /// Lifetime of the session's access tokens.
    pub(crate) access_ttl_ms: u64,
    /// Sessions of this user ended by the cap (sign-in only).
    pub(crate) capped: u64,
}

/// How a refresh token names its session.
#[derive(Debug, Clone)]
pub(crate) enum RefreshKey {
    /// `<session id>.<secret>`: the session and the SHA-256 of the secret.
    Session { id: i64, secret_hash: [u8; 32] },
    /// A token from a JSON state file of an earlier version: the SHA-256 of the whole token.
    Legacy { hash: [u8; 32] },
}

/// Why a refresh token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefreshRefusal {
    /// No such session (never issued, or ended).
    Unknown,
    /// The session is live but the token is not its current one.
    Used,
    /// The token or its session expired.
    Expired,
}

/// A live session of a user, for the admin routes.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct SessionRow {
    pub(crate) id: String,
    pub(crate) created_at_ms: u64,
    pub(crate) refreshed_at_ms: Option<u64>,
    pub(crate) refresh_expires_at_ms: u64,
    pub(crate) ends_at_ms: u64,
}

/// A user with live sessions, for the admin routes.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct UserRow {
    pub(crate) sub: String,
    pub(crate) uid: String,
    pub(crate) created_at_ms: u64,
    pub(crate) last_sign_in_ms: u64,
    pub(crate) sessions: Vec<SessionRow>,
}

/// A user in an export file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExportedUser {
    pub(crate) sub: String,
    pub(crate) uid: String,
    pub(crate) created_at_ms: u64,
    #[serde(default)]
    pub(crate) last_sign_in_ms: u64,
}

/// Counts for stats and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Counts {
    pub(crate) users: u64,
    pub(crate) live_sessions: u64,
}

type Reply = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
/// A piece of work for the writer: runs in a savepoint; returns whether to keep its changes,
/// and the reply to send once the transaction is committed (or failed).
type Work = Box<dyn FnOnce(&Connection) -> (bool, Reply) + Send>;

/// Read connections of a database file.
struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    closed: std::sync::atomic::AtomicBool,
    /// The file lock, released only once the last connection is closed (dropped after `idle`).
    _lock: Arc<File>,
}

impl Readers {
    fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        use std::sync::atomic::Ordering;
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        let conn = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        let conn = match conn {
            Some(conn) => conn,
            None => {
                let conn = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                conn.busy_timeout(std::time::Duration::from_secs(5))?;
                conn.execute_batch(&format!(
                    "PRAGMA query_only = ON; PRAGMA cache_size = -{CACHE_SIZE_KIB};"
                ))?;
                conn.set_prepared_statement_cache_capacity(32);
                conn
            }
        };
        let out = f(&conn);
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if idle.len() < MAX_IDLE_READERS && !self.closed.load(Ordering::Acquire) {
            idle.push(conn);
        }
        out
    }

    fn close(&self) {
        self.closed
            .store(true, std::sync::atomic::Ordering::Release);
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }
}

/// What [`Store::open`] found.
pub(crate) struct Opened {
    pub(crate) store: Store,
    /// The access-token signing seed (kept in the database).
    pub(crate) seed: Zeroizing<[u8; 32]>,
    /// Things to tell the operator once (an import of a JSON state file).
    pub(crate) notices: Vec<String>,
}

/// The emulator's state. See the module docs.
pub(crate) struct Store {
    jobs: RwLock<Option<mpsc::Sender<Work>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Writer pauses requested by the checkpointer, and the checkpointer's stop flag.
    pause: Arc<Pause>,
    checkpointer: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// `None` in memory (reads go to the writer).
    readers: Option<Arc<Readers>>,
}

impl Drop for Store {
    fn drop(&mut self) {
        self.close();
    }
}

fn state_error(path: &Path, detail: impl Into<String>) -> EmulatorError {
    EmulatorError::State {
        path: path.to_path_buf(),
        detail: detail.into(),
    }
}

/// The backup name of a JSON state file of an earlier version: `PATH.v1.json`.
pub(crate) fn json_backup_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".v1.json");
    path.with_file_name(name)
}

/// Apply the connection settings of the writer.
fn configure_writer(conn: &Connection, file: bool) -> rusqlite::Result<()> {
    conn.set_prepared_statement_cache_capacity(64);
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    if file {
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(rusqlite::Error::InvalidQuery);
        }
        conn.execute_batch(&format!(
            "PRAGMA synchronous = NORMAL;
             PRAGMA wal_autocheckpoint = 0;
             PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT};"
        ))?;
    }
    conn.execute_batch(&format!(
        "PRAGMA cache_size = -{CACHE_SIZE_KIB}; PRAGMA temp_store = MEMORY;"
    ))
}

/// Bring the schema to [`SCHEMA_VERSION`]. Returns the version found.
fn migrate(conn: &mut Connection) -> Result<i64, String> {
    let found: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| format!("cannot read the schema version: {e}"))?;
    if found > SCHEMA_VERSION {
        return Err(format!(
            "schema version {found} was written by a newer cloudbase-ticket (this one knows \
             up to {SCHEMA_VERSION}); use that version or another --state file"
        ));
    }
    if found < 0 {
        return Err(format!("schema version {found} is not valid"));
    }
    if found == 0 {
        // A database that has tables but no version is not ours.
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(|e| format!("not a SQLite database ({e})"))?;
        if tables != 0 {
            return Err(
                "a SQLite database that is not an emulator state database (it has tables but \
                 no schema version); give another --state file"
                    .to_string(),
            );
        }
    }
    for (from, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn
            .transaction()
            .map_err(|e| format!("cannot migrate: {e}"))?;
        tx.execute_batch(sql)
            .and_then(|()| tx.pragma_update(None, "application_id", APPLICATION_ID))
            .and_then(|()| tx.pragma_update(None, "user_version", from as i64 + 1))
            .and_then(|()| tx.commit())
            .map_err(|e| format!("cannot migrate from schema version {from}: {e}"))?;
    }
    // A database of schema version 1 made before the application id was set gets it now
    // (`check_ours` took it for ours by its exact tables).
    let id: i64 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(|e| format!("cannot read the application id: {e}"))?;
    if id != APPLICATION_ID {
        conn.pragma_update(None, "application_id", APPLICATION_ID)
            .map_err(|e| format!("cannot set the application id: {e}"))?;
    }
    Ok(found)
}

fn meta_get(conn: &Connection, key: &str) -> rusqlite::Result<Option<Vec<u8>>> {
    conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()
}

fn meta_put(conn: &Connection, key: &str, value: &[u8]) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )
    .map(drop)
}

/// Check the env and read (or create) the signing seed.
fn env_and_seed(conn: &Connection, env: &str, now_ms: u64) -> Result<Zeroizing<[u8; 32]>, String> {
    let e = |e: rusqlite::Error| format!("cannot read: {e}");
    match meta_get(conn, "env").map_err(e)? {
        Some(found) if found != env.as_bytes() => {
            return Err(format!(
                "it belongs to env {:?}, not {env:?}",
                crate::text::truncate_escaped(&String::from_utf8_lossy(&found), 64)
            ));
        }
        Some(_) => {}
        None => {
            meta_put(conn, "env", env.as_bytes()).map_err(e)?;
            meta_put(conn, "created_at_ms", now_ms.to_string().as_bytes()).map_err(e)?;
        }
    }
    match meta_get(conn, "access_token_seed").map_err(e)? {
        Some(bytes) => {
            let bytes = Zeroizing::new(bytes);
            let seed: [u8; 32] = bytes
                .as_slice()
                .try_into()
                .map_err(|_| "the access-token seed is not 32 bytes".to_string())?;
            Ok(Zeroizing::new(seed))
        }
        None => {
            let seed = Zeroizing::new(random_bytes::<32>());
            meta_put(conn, "access_token_seed", seed.as_slice()).map_err(e)?;
            Ok(seed)
        }
    }
}

/// A JSON state file of an earlier version (`{"format":1,…}`).
#[derive(Deserialize)]
struct LegacyStateFile {
    format: u32,
    env: String,
    access_token_key: String,
    users: Vec<LegacyUser>,
    refresh_tokens: Vec<LegacyRefresh>,
}

#[derive(Deserialize)]
struct LegacyUser {
    uid: String,
    sub: String,
    created_at_ms: u64,
}

#[derive(Deserialize)]
struct LegacyRefresh {
    sha256: String,
    sub: String,
    expires_at_ms: u64,
}

/// Whether `path` starts like a JSON document (after whitespace).
fn looks_like_json(path: &Path) -> std::io::Result<bool> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    let mut head = [0u8; 64];
    let n = file.read(&mut head)?;
    Ok(head[..n]
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'{'))
}

/// A JSON state file of an earlier version, read and checked whole.
struct Legacy {
    seed: Zeroizing<[u8; 32]>,
    users: Vec<LegacyUser>,
    /// Refresh tokens: the SHA-256 of the token, the user's `sub`, the expiry.
    tokens: Vec<([u8; 32], String, u64)>,
}

/// Parse and check a legacy JSON state file whole — every field, the signing key, each user
/// and refresh token — before anything is renamed or created, so that a bad file is refused
/// where it is, untouched.
fn read_legacy(path: &Path, env: &str) -> Result<Legacy, EmulatorError> {
    let bad = |detail: String| state_error(path, detail);
    let text = Zeroizing::new(
        std::fs::read(path).map_err(|e| bad(format!("cannot read: {}", io_words(&e))))?,
    );
    let file: LegacyStateFile = serde_json::from_slice(&text).map_err(|e| {
        bad(format!(
            "neither a SQLite database nor a JSON state file of an earlier version \
             (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    if file.format != 1 {
        return Err(bad(format!(
            "JSON state format {} is not the known format 1",
            file.format
        )));
    }
    if file.env != env {
        return Err(bad(format!(
            "it belongs to env {:?}, not {env:?}",
            crate::text::truncate_escaped(&file.env, 64)
        )));
    }
    let seed: [u8; 32] = STANDARD
        .decode(file.access_token_key.as_bytes())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            bad(
                "access_token_key is not 32 bytes of base64; the file was left as it \
                 is"
                .to_string(),
            )
        })?;
    let seed = Zeroizing::new(seed);
    let mut uids = std::collections::HashSet::new();
    let mut subs = std::collections::HashSet::new();
    for user in &file.users {
        let shown = crate::text::truncate_escaped(&user.uid, 64);
        if crate::uid::check_uid(&user.uid).is_err() || user.sub.is_empty() || user.sub.len() > 64 {
            return Err(bad(format!(
                "user {shown:?} is not valid (uid must pass the uid rule, sub 1 to 64 \
                 characters); the file was left as it is"
            )));
        }
        if !uids.insert(user.uid.as_str()) || !subs.insert(user.sub.as_str()) {
            return Err(bad(format!(
                "user {shown:?} (or its sub) appears twice; the file was left as it is"
            )));
        }
    }
    let mut tokens = Vec::with_capacity(file.refresh_tokens.len());
    for token in &file.refresh_tokens {
        let hash: [u8; 32] = URL_SAFE_NO_PAD
            .decode(token.sha256.as_bytes())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                bad(
                    "a refresh token's sha256 is not 32 bytes of unpadded base64url; the \
                     file was left as it is"
                        .to_string(),
                )
            })?;
        tokens.push((hash, token.sub.clone(), token.expires_at_ms));
    }
    Ok(Legacy {
        seed,
        users: file.users,
        tokens,
    })
}

/// Import a checked legacy JSON state into a fresh database, in one transaction.
fn import_legacy(
    conn: &mut Connection,
    file: &Legacy,
    source: &Path,
    now_ms: u64,
    access_ttl_ms: u64,
) -> Result<(usize, usize), EmulatorError> {
    let sql = |e: rusqlite::Error| state_error(source, format!("cannot import: {e}"));
    let tx = conn.transaction().map_err(sql)?;
    meta_put(&tx, "access_token_seed", file.seed.as_slice()).map_err(sql)?;
    meta_put(
        &tx,
        "imported_from_json_v1_at_ms",
        now_ms.to_string().as_bytes(),
    )
    .map_err(sql)?;
    for user in &file.users {
        tx.execute(
            "INSERT INTO users (sub, uid, created_at_ms, last_sign_in_ms) VALUES (?1, ?2, ?3, ?3)",
            params![user.sub, user.uid, user.created_at_ms as i64],
        )
        .map_err(sql)?;
    }
    let mut tokens = 0;
    for (hash, sub, expires_at_ms) in &file.tokens {
        if *expires_at_ms <= now_ms {
            continue;
        }
        let user_id: Option<i64> = tx
            .query_row("SELECT id FROM users WHERE sub = ?1", [sub], |r| r.get(0))
            .optional()
            .map_err(sql)?;
        // A token naming a user the file lacks (the old format could save one) is dropped.
        let Some(user_id) = user_id else { continue };
        tx.execute(
            "INSERT INTO sessions (user_id, created_at_ms, refresh_hash, refresh_expires_at_ms,
                                   ends_at_ms, access_ttl_ms)
             VALUES (?1, ?2, ?3, ?4, ?4, ?5)",
            params![
                user_id,
                now_ms as i64,
                random_bytes::<32>(),
                *expires_at_ms as i64,
                access_ttl_ms as i64
            ],
        )
        .map_err(sql)?;
        let session_id = tx.last_insert_rowid();
        tx.execute(
            "INSERT OR IGNORE INTO legacy_refresh (hash, session_id) VALUES (?1, ?2)",
            params![hash.as_slice(), session_id],
        )
        .map_err(sql)?;
        tokens += 1;
    }
    tx.commit().map_err(sql)?;
    Ok((file.users.len(), tokens))
}

/// The first 16 bytes of every SQLite database file.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// `path` with `suffix` added to its name (`PATH-wal`, `PATH-shm`).
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

/// A `file:` URI for `path` (SQLite's URI filenames), every byte outside the unreserved set
/// and `/` percent-encoded, with the query `query`.
fn file_uri(path: &Path, query: &str) -> String {
    let mut uri = String::from("file:");
    for &b in path.as_os_str().as_encoded_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'.' | b'_' | b'~') {
            uri.push(char::from(b));
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    uri.push('?');
    uri.push_str(query);
    uri
}

/// Decide, reading only, whether the file at `path` may be used as the state database: it is
/// empty (a new file, or a SQLite database without tables or schema version), or it is an
/// emulator state database (a schema version and the emulator's tables). Anything else — a
/// file that is not SQLite, another application's database — is refused here, before the
/// writer's pragmas (WAL mode) or any write could change it.
///
/// The look is read-only and leaves no file behind: a database in rollback-journal mode is
/// read through a read-only connection (which creates nothing); one in WAL mode without a
/// `-wal` file is read as `immutable` (a read-only connection to a WAL database would create
/// `-wal` and `-shm` files and leave them); one with a `-wal` file (in use, or not checkpointed
/// after a crash) through a read-only connection that uses the files already there.
fn check_ours(path: &Path) -> Result<(), EmulatorError> {
    let bad = |detail: String| state_error(path, detail);
    let mut head = Vec::with_capacity(100);
    File::open(path)
        .and_then(|file| file.take(100).read_to_end(&mut head))
        .map_err(|e| bad(format!("cannot read: {}", io_words(&e))))?;
    if head.is_empty() {
        return Ok(());
    }
    if !head.starts_with(SQLITE_MAGIC) {
        return Err(bad(
            "not a SQLite database (nor a JSON state file of an earlier version); give a path \
             that does not exist yet, or an emulator state file"
                .to_string(),
        ));
    }
    let wal_mode = head.get(18..20) == Some(&[2, 2][..]);
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let opened = if wal_mode && !with_suffix(path, "-wal").exists() {
        Connection::open_with_flags(
            file_uri(path, "immutable=1"),
            flags | OpenFlags::SQLITE_OPEN_URI,
        )
    } else {
        Connection::open_with_flags(path, flags)
    };
    let read = |conn: &Connection| -> rusqlite::Result<Found> {
        let version = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let application_id = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
        let objects = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
        let mut tables = conn
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
            )?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        tables.sort();
        let meta_columns = conn
            .prepare("PRAGMA table_info(meta)")?
            .query_map([], |r| r.get(1))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(Found {
            version,
            application_id,
            objects,
            tables,
            meta_columns,
        })
    };
    let found = opened
        .and_then(|conn| {
            let out = read(&conn);
            drop(conn);
            out
        })
        .map_err(|e| bad(format!("not a readable SQLite database ({e})")))?;
    judge(&found).map_err(bad)
}

/// What [`check_ours`] read of a SQLite database.
struct Found {
    version: i64,
    application_id: i64,
    objects: i64,
    /// Table names, SQLite's own `sqlite_*` left out, sorted.
    tables: Vec<String>,
    /// The columns of a table `meta`, if there is one.
    meta_columns: Vec<String>,
}

/// The decision of [`check_ours`]: `Ok` for an empty database or one of ours of a known
/// schema version; a newer one of ours, or anyone else's, is refused (untouched).
///
/// Ours is: the application id [`APPLICATION_ID`] (set since it was introduced), or, for a
/// database made before that (application id 0, schema version 1), exactly the tables of
/// version 1 with `meta (key, value)`. A schema version alone proves nothing: other
/// applications use `PRAGMA user_version` too.
fn judge(found: &Found) -> Result<(), String> {
    let &Found {
        version,
        application_id,
        objects,
        ..
    } = found;
    let no_id_or_ours = application_id == 0 || application_id == APPLICATION_ID;
    if version == 0 && objects == 0 && no_id_or_ours {
        return Ok(());
    }
    let v1_tables = found
        .tables
        .iter()
        .map(String::as_str)
        .eq(TABLES_V1.iter().copied())
        && found.meta_columns == ["key", "value"];
    if application_id == APPLICATION_ID && version > SCHEMA_VERSION {
        return Err(format!(
            "schema version {version} was written by a newer cloudbase-ticket (this one knows \
             up to {SCHEMA_VERSION}); it was left untouched; use that version or another \
             --state file"
        ));
    }
    let ours = version == SCHEMA_VERSION && no_id_or_ours && v1_tables;
    if ours {
        return Ok(());
    }
    let why = if !no_id_or_ours {
        format!("its application id is {application_id:#010x}, not the emulator's")
    } else if application_id == APPLICATION_ID {
        format!(
            "the emulator's application id, but schema version {version} without the emulator's tables"
        )
    } else if version == 0 {
        "it has tables but no schema version".to_string()
    } else {
        format!("schema version {version}, but not the emulator's tables and application id")
    };
    Err(format!(
        "a SQLite database that is not an emulator state database ({why}); it was left \
         untouched; give another --state file"
    ))
}

/// Why the database file could not be opened or created, in words, with what to do.
fn open_words(path: &Path, e: &std::io::Error) -> String {
    let words = io_words(e);
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    match e.kind() {
        // `create(true)`: ENOENT means the directory is missing.
        std::io::ErrorKind::NotFound if !parent.is_dir() => format!(
            "cannot create it: the directory {} does not exist; create the directory first",
            parent.display()
        ),
        std::io::ErrorKind::PermissionDenied => format!(
            "cannot open or create it: {words}; check its permissions, or choose a directory \
             you can write to"
        ),
        std::io::ErrorKind::ReadOnlyFilesystem => {
            format!("cannot open or create it: {words}; choose a directory you can write to")
        }
        std::io::ErrorKind::NotADirectory => {
            format!("cannot open it: {words}; a part of the path is a file, not a directory")
        }
        std::io::ErrorKind::IsADirectory => {
            format!("cannot open it: {words}; give the path of a file")
        }
        _ => format!("cannot open it: {words}"),
    }
}

/// Open (creating if missing, mode 0600) and lock the database file.
fn open_locked(path: &Path) -> Result<File, EmulatorError> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let file = options
        .open(path)
        .map_err(|e| state_error(path, open_words(path, &e)))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(state_error(
                path,
                "in use by another emulator (another `cloudbase-ticket serve --state` on this \
                 file holds its lock); stop that one, or give another --state file",
            ));
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(state_error(path, format!("cannot lock: {}", io_words(&e))));
        }
    }
    Ok(file)
}

/// Make the database file owner-only (0600) if it is not: it holds the access-token signing
/// seed (SQLite gives its -wal and -shm files the database file's mode).
fn make_private(file: &File, path: &Path) -> Result<(), EmulatorError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let meta = file
            .metadata()
            .map_err(|e| state_error(path, format!("cannot stat: {}", io_words(&e))))?;
        if meta.permissions().mode() & 0o077 != 0 {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(|e| {
                    state_error(
                        path,
                        format!("cannot make it private (0600): {}", io_words(&e)),
                    )
                })?;
        }
    }
    #[cfg(not(unix))]
    let _ = (file, path);
    Ok(())
}

impl Store {
    /// Open the database at `path` (created if missing), or an in-memory one. Imports a JSON
    /// state file of an earlier version found at `path` (kept as `PATH.v1.json`).
    /// `access_ttl_ms` is given to the sessions of imported refresh tokens.
    pub(crate) fn open(
        path: Option<&Path>,
        env: &str,
        now_ms: u64,
        access_ttl_ms: u64,
    ) -> Result<Opened, EmulatorError> {
        let Some(path) = path else {
            let mut conn = Connection::open_in_memory()
                .map_err(|e| EmulatorError::Serve(std::io::Error::other(e.to_string())))?;
            let fail = |d: String| EmulatorError::Serve(std::io::Error::other(d));
            configure_writer(&conn, false).map_err(|e| fail(e.to_string()))?;
            migrate(&mut conn).map_err(fail)?;
            let seed = env_and_seed(&conn, env, now_ms).map_err(fail)?;
            return Ok(Opened {
                store: Self::start(conn, None, None),
                seed,
                notices: Vec::new(),
            });
        };
        let mut notices = Vec::new();
        // A JSON state file of an earlier version: read it whole, then move it aside.
        let backup = json_backup_path(path);
        let legacy_here = looks_like_json(path)
            .map_err(|e| state_error(path, format!("cannot read: {}", io_words(&e))))?;
        if legacy_here {
            read_legacy(path, env)?;
            if backup.exists() {
                return Err(state_error(
                    path,
                    format!(
                        "is a JSON state file of an earlier version, and {} exists already; \
                         move one of them away",
                        backup.display()
                    ),
                ));
            }
            std::fs::rename(path, &backup).map_err(|e| {
                state_error(
                    path,
                    format!(
                        "cannot move the JSON state file to {}: {}",
                        backup.display(),
                        io_words(&e)
                    ),
                )
            })?;
        }
        let lock = open_locked(path)?;
        // Ours (or empty) before anything writes to it: a foreign file is left as it was.
        check_ours(path)?;
        let bad = |detail: String| state_error(path, detail);
        let mut conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| bad(format!("cannot open: {e}")))?;
        configure_writer(&conn, true).map_err(|e| {
            bad(format!(
                "not a SQLite database, or cannot use WAL mode here ({e})"
            ))
        })?;
        migrate(&mut conn).map_err(&bad)?;
        make_private(&lock, path)?;
        let seed_known = meta_get(&conn, "access_token_seed")
            .map_err(|e| bad(format!("cannot read: {e}")))?
            .is_some();
        if !seed_known && backup.exists() {
            // A database without a signing seed next to a JSON backup not yet imported: this
            // start, or one that stopped (or failed to commit) between the rename and the
            // import. (A database that was ever used has a seed.)
            let file = read_legacy(&backup, env)?;
            meta_put(&conn, "env", env.as_bytes()).map_err(|e| bad(e.to_string()))?;
            let (users, tokens) = import_legacy(&mut conn, &file, &backup, now_ms, access_ttl_ms)?;
            notices.push(format!(
                "{} was a JSON state file of an earlier version: imported {users} users and \
                 {tokens} live refresh tokens into a SQLite database there; the JSON file is \
                 kept as {} (delete it when you no longer need it)",
                path.display(),
                backup.display()
            ));
        }
        let seed = env_and_seed(&conn, env, now_ms).map_err(&bad)?;
        let lock = Arc::new(lock);
        let readers = Arc::new(Readers {
            path: path.to_path_buf(),
            idle: Mutex::new(Vec::new()),
            closed: std::sync::atomic::AtomicBool::new(false),
            _lock: Arc::clone(&lock),
        });
        Ok(Opened {
            store: Self::start(conn, Some(readers), Some(lock)),
            seed,
            notices,
        })
    }

    fn start(conn: Connection, readers: Option<Arc<Readers>>, lock: Option<Arc<File>>) -> Self {
        let (jobs, queue) = mpsc::channel::<Work>();
        let pause = Arc::new(Pause::default());
        let checkpointer = match (&readers, &lock) {
            (Some(readers), Some(lock)) => {
                let path = readers.path.clone();
                let (pause, lock) = (Arc::clone(&pause), Arc::clone(lock));
                std::thread::Builder::new()
                    .name("emulator-checkpoint".to_string())
                    .spawn(move || {
                        checkpointer_loop(&path, &pause);
                        drop(lock);
                    })
                    .ok()
            }
            _ => None,
        };
        let writer_pause = Arc::clone(&pause);
        let writer = std::thread::Builder::new()
            .name("emulator-store".to_string())
            .spawn(move || {
                writer_loop(conn, queue, &writer_pause);
                // The lock goes after the connection is closed.
                drop(lock);
            })
            .ok();
        Self {
            jobs: RwLock::new(writer.as_ref().map(|_| jobs)),
            writer: Mutex::new(writer),
            pause,
            checkpointer: Mutex::new(checkpointer),
            readers,
        }
    }

    /// Finish the queued work, close every connection (checkpointing the WAL) and release the
    /// file lock once the last read in flight is done. Later calls fail with `Closed`.
    pub(crate) fn close(&self) {
        self.pause.stop();
        let checkpointer = self
            .checkpointer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(checkpointer) = checkpointer {
            let _ = checkpointer.join();
        }
        self.jobs
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let writer = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(writer) = writer {
            let _ = writer.join();
        }
        if let Some(readers) = &self.readers {
            readers.close();
        }
    }

    /// Run `f` on the writer in the next transaction; answer once it is committed. An `Err`
    /// from `f` rolls back its own changes only.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let work: Work = Box::new(move |conn| {
            let result = f(conn);
            let keep = result.is_ok();
            let reply: Reply = Box::new(move |committed| {
                let _ = tx.send(committed.and(result));
            });
            (keep, reply)
        });
        self.jobs
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .ok_or(StoreError::Closed)?
            .send(work)
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Run a read: on a read connection off the async workers (database file), or on the
    /// writer (in memory).
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        match &self.readers {
            Some(readers) => {
                let readers = Arc::clone(readers);
                tokio::task::spawn_blocking(move || readers.with(f))
                    .await
                    .map_err(|_| StoreError::Closed)?
            }
            None => self.write(f).await,
        }
    }

    /// Sign `new.uid` in: the user (created on first sight with a new 19-digit `sub`) and a new
    /// session holding the refresh token hash. Ends the user's oldest sessions beyond the cap.
    pub(crate) async fn sign_in(&self, new: NewSession) -> Result<Session, StoreError> {
        self.write(move |conn| sign_in_sql(conn, &new)).await
    }

    /// Redeem a refresh token once: its session gets `new_hash` as its refresh token, valid
    /// until `new_expires_at_ms` (capped at the session's end).
    pub(crate) async fn refresh(
        &self,
        key: RefreshKey,
        now_ms: u64,
        new_hash: [u8; 32],
        refresh_ttl_ms: u64,
    ) -> Result<Result<Session, RefreshRefusal>, StoreError> {
        self.write(move |conn| refresh_sql(conn, &key, now_ms, &new_hash, refresh_ttl_ms))
            .await
    }

    /// The session a refresh token names, without redeeming it: for the v1 protocol, whose
    /// clients reuse one refresh token for every new access token (`@cloudbase/app@1.8.4`
    /// `_refreshAccessToken`). Refused as [`refresh`](Self::refresh) refuses.
    pub(crate) async fn session_for_refresh(
        &self,
        key: RefreshKey,
        now_ms: u64,
    ) -> Result<Result<Session, RefreshRefusal>, StoreError> {
        self.read(move |conn| {
            Ok(refresh_session_sql(conn, &key, now_ms)?.map(|(session, _legacy)| session))
        })
        .await
    }

    /// The live session `id` with its user, if it exists and is not past `ends_at_ms` at
    /// `now_ms`.
    pub(crate) async fn session(
        &self,
        id: i64,
        now_ms: u64,
    ) -> Result<Option<Session>, StoreError> {
        self.read(move |conn| {
            let row = conn
                .prepare_cached(
                    "SELECT u.sub, u.uid, u.created_at_ms, s.ends_at_ms, s.access_ttl_ms
                     FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = ?1",
                )?
                .query_row([id], |r| {
                    Ok(Session {
                        id,
                        user: User {
                            sub: r.get(0)?,
                            uid: r.get(1)?,
                            created_at_ms: r.get::<_, i64>(2)? as u64,
                        },
                        ends_at_ms: r.get::<_, i64>(3)? as u64,
                        access_ttl_ms: r.get::<_, i64>(4)? as u64,
                        capped: 0,
                    })
                })
                .optional()?;
            Ok(row.filter(|s| now_ms < s.ends_at_ms))
        })
        .await
    }

    /// End session `id` of user `sub`. Whether it was live.
    pub(crate) async fn end_session(&self, id: i64, sub: String) -> Result<bool, StoreError> {
        self.write(move |conn| {
            let owned: Option<i64> = conn
                .prepare_cached(
                    "SELECT s.id FROM sessions s JOIN users u ON u.id = s.user_id
                     WHERE s.id = ?1 AND u.sub = ?2",
                )?
                .query_row(params![id, sub], |r| r.get(0))
                .optional()?;
            match owned {
                Some(id) => delete_session(conn, id).map(|()| true),
                None => Ok(false),
            }
        })
        .await
    }

    /// End the session whose current refresh token has `secret_hash`. Whether it did.
    pub(crate) async fn end_session_by_refresh(
        &self,
        id: i64,
        secret_hash: [u8; 32],
    ) -> Result<bool, StoreError> {
        self.write(move |conn| {
            let hash: Option<Vec<u8>> = conn
                .prepare_cached("SELECT refresh_hash FROM sessions WHERE id = ?1")?
                .query_row([id], |r| r.get(0))
                .optional()?;
            if !hash.is_some_and(|h| bool::from(h.as_slice().ct_eq(secret_hash.as_slice()))) {
                return Ok(false);
            }
            delete_session(conn, id)?;
            Ok(true)
        })
        .await
    }

    /// End every session of user `sub`: how many, or `None` for no such user.
    pub(crate) async fn end_sessions_of(&self, sub: String) -> Result<Option<u64>, StoreError> {
        self.write(move |conn| {
            let user_id: Option<i64> = conn
                .prepare_cached("SELECT id FROM users WHERE sub = ?1")?
                .query_row([&sub], |r| r.get(0))
                .optional()?;
            let Some(user_id) = user_id else {
                return Ok(None);
            };
            conn.prepare_cached(
                "UPDATE users SET last_sign_in_ms = max(last_sign_in_ms,
                 coalesce((SELECT max(created_at_ms) FROM sessions WHERE user_id = ?1), 0))
                 WHERE id = ?1",
            )?
            .execute([user_id])?;
            let n = conn
                .prepare_cached("DELETE FROM sessions WHERE user_id = ?1")?
                .execute([user_id])?;
            Ok(Some(n as u64))
        })
        .await
    }

    /// Delete sessions whose refresh token expired by `now_ms` (in chunks, so the writer is
    /// never held long). How many.
    pub(crate) async fn prune(&self, now_ms: u64) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let n = self
                .write(move |conn| {
                    let ids: Vec<i64> = conn
                        .prepare_cached(
                            "SELECT id FROM sessions WHERE refresh_expires_at_ms <= ?1 LIMIT ?2",
                        )?
                        .query_map(params![now_ms as i64, PRUNE_CHUNK], |r| r.get(0))?
                        .collect::<Result<_, _>>()?;
                    for &id in &ids {
                        delete_session(conn, id)?;
                    }
                    let n = ids.len();
                    if (n as i64) < PRUNE_CHUNK {
                        conn.prepare_cached(
                            "DELETE FROM legacy_refresh WHERE session_id NOT IN
                             (SELECT id FROM sessions)",
                        )?
                        .execute([])?;
                    }
                    Ok(n as u64)
                })
                .await?;
            total += n;
            if (n as i64) < PRUNE_CHUNK {
                return Ok(total);
            }
        }
    }

    /// Delete every user and session (the signing key stays; session ids are never reused).
    pub(crate) async fn reset(&self) -> Result<(), StoreError> {
        self.write(|conn| {
            conn.execute_batch(
                "DELETE FROM legacy_refresh; DELETE FROM sessions; DELETE FROM users;",
            )?;
            Ok(())
        })
        .await
    }

    /// Users (most recent sign-in first, at most `limit`) with their live sessions.
    pub(crate) async fn users(&self, now_ms: u64, limit: u64) -> Result<Vec<UserRow>, StoreError> {
        self.read(move |conn| {
            // One snapshot for both queries (a savepoint also nests in the writer's
            // transaction, where reads run in memory).
            conn.execute_batch("SAVEPOINT read_users")?;
            let tx = conn;
            let mut users = Vec::new();
            let listed = (|| -> Result<(), StoreError> {
                let mut stmt = tx.prepare_cached(&format!(
                    "SELECT u.id, u.sub, u.uid, u.created_at_ms, {LAST_SIGN_IN} AS last
                     FROM users u ORDER BY last DESC, u.id DESC LIMIT ?1"
                ))?;
                let mut sessions = tx.prepare_cached(
                    "SELECT id, created_at_ms, refreshed_at_ms, refresh_expires_at_ms, ends_at_ms
                     FROM sessions WHERE user_id = ?1 AND refresh_expires_at_ms > ?2
                     AND ends_at_ms > ?2 ORDER BY id",
                )?;
                let rows = stmt.query_map([limit.min(i64::MAX as u64) as i64], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        UserRow {
                            sub: r.get(1)?,
                            uid: r.get(2)?,
                            created_at_ms: r.get::<_, i64>(3)? as u64,
                            last_sign_in_ms: r.get::<_, i64>(4)? as u64,
                            sessions: Vec::new(),
                        },
                    ))
                })?;
                for row in rows {
                    let (id, mut user) = row?;
                    user.sessions = sessions
                        .query_map(params![id, now_ms as i64], |r| {
                            Ok(SessionRow {
                                id: r.get::<_, i64>(0)?.to_string(),
                                created_at_ms: r.get::<_, i64>(1)? as u64,
                                refreshed_at_ms: r.get::<_, Option<i64>>(2)?.map(|v| v as u64),
                                refresh_expires_at_ms: r.get::<_, i64>(3)? as u64,
                                ends_at_ms: r.get::<_, i64>(4)? as u64,
                            })
                        })?
                        .collect::<Result<_, _>>()?;
                    users.push(user);
                }
                Ok(())
            })();
            // Released whatever happened: a pooled connection must not keep its snapshot.
            let released = conn.execute_batch("RELEASE read_users");
            listed?;
            released?;
            Ok(users)
        })
        .await
    }

    /// Every user, for an export (by creation).
    pub(crate) async fn export_users(&self) -> Result<Vec<ExportedUser>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT u.sub, u.uid, u.created_at_ms, {LAST_SIGN_IN} FROM users u ORDER BY u.id"
            ))?;
            let rows = stmt.query_map([], |r| {
                Ok(ExportedUser {
                    sub: r.get(0)?,
                    uid: r.get(1)?,
                    created_at_ms: r.get::<_, i64>(2)? as u64,
                    last_sign_in_ms: r.get::<_, i64>(3)? as u64,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// Add exported users. A user already present with the same `uid` and `sub` is kept; a
    /// `uid` or `sub` present with another partner is an error naming it. How many were added.
    pub(crate) async fn import_users(
        &self,
        users: Vec<ExportedUser>,
    ) -> Result<Result<u64, String>, StoreError> {
        self.write(move |conn| {
            let mut added = 0;
            for user in &users {
                let by_uid: Option<String> = conn
                    .prepare_cached("SELECT sub FROM users WHERE uid = ?1")?
                    .query_row([&user.uid], |r| r.get(0))
                    .optional()?;
                let by_sub: Option<String> = conn
                    .prepare_cached("SELECT uid FROM users WHERE sub = ?1")?
                    .query_row([&user.sub], |r| r.get(0))
                    .optional()?;
                match (by_uid, by_sub) {
                    (None, None) => {
                        conn.prepare_cached(
                            "INSERT INTO users (sub, uid, created_at_ms, last_sign_in_ms)
                             VALUES (?1, ?2, ?3, ?4)",
                        )?
                        .execute(params![
                            user.sub,
                            user.uid,
                            user.created_at_ms as i64,
                            user.last_sign_in_ms as i64
                        ])?;
                        added += 1;
                    }
                    (Some(sub), _) if sub == user.sub => {}
                    (Some(_), _) => {
                        // Nothing of this import is kept.
                        return Err(StoreError::Sqlite(format!(
                            "\u{0}uid {} already has another sub",
                            crate::text::truncate_escaped(&user.uid, 64)
                        )));
                    }
                    (None, Some(_)) => {
                        return Err(StoreError::Sqlite(format!(
                            "\u{0}sub {} already belongs to another uid",
                            crate::text::truncate_escaped(&user.sub, 64)
                        )));
                    }
                }
            }
            Ok(added)
        })
        .await
        .map(Ok)
        .or_else(|e| match e {
            // A conflict (marked with a NUL prefix above) is the caller's problem, not the
            // database's.
            StoreError::Sqlite(msg) if msg.starts_with('\u{0}') => Ok(Err(msg[1..].to_string())),
            e => Err(e),
        })
    }

    /// How many users, and how many sessions are live at `now_ms`.
    pub(crate) async fn counts(&self, now_ms: u64) -> Result<Counts, StoreError> {
        self.read(move |conn| {
            let users: i64 = conn.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?;
            let live: i64 = conn.query_row(
                "SELECT count(*) FROM sessions WHERE refresh_expires_at_ms > ?1
                 AND ends_at_ms > ?1",
                [now_ms as i64],
                |r| r.get(0),
            )?;
            Ok(Counts {
                users: users as u64,
                live_sessions: live as u64,
            })
        })
        .await
    }

    /// How many session rows the database holds (live or not yet pruned).
    pub(crate) async fn session_rows(&self) -> Result<u64, StoreError> {
        self.read(|conn| {
            let n: i64 = conn.query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))?;
            Ok(n as u64)
        })
        .await
    }
}

fn writer_loop(conn: Connection, queue: mpsc::Receiver<Work>, pause: &Pause) {
    let mut batch: Vec<Work> = Vec::with_capacity(MAX_BATCH);
    let mut replies: Vec<Reply> = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = queue.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(work) => batch.push(work),
                Err(_) => break,
            }
        }
        let outcome = run_batch(&conn, &mut batch, &mut replies);
        for reply in replies.drain(..) {
            reply(outcome.clone());
        }
        pause.honour();
    }
    // The channel is closed: the store is being dropped. Closing the connection checkpoints.
    let _ = conn.close();
}

/// The checkpointer's requests to the writer: pause between two transactions.
#[derive(Default)]
struct Pause {
    requested: std::sync::atomic::AtomicBool,
    state: Mutex<PauseState>,
    changed: std::sync::Condvar,
}

#[derive(Default)]
struct PauseState {
    requested: bool,
    paused: bool,
    stopped: bool,
}

impl Pause {
    fn lock(&self) -> std::sync::MutexGuard<'_, PauseState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Writer side, between transactions: wait while a pause is requested.
    fn honour(&self) {
        use std::sync::atomic::Ordering;
        if !self.requested.load(Ordering::Acquire) {
            return;
        }
        let mut state = self.lock();
        state.paused = true;
        self.changed.notify_all();
        while state.requested && !state.stopped {
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        state.paused = false;
    }

    /// Checkpointer side: ask the writer to pause; wait (up to `limit`) until it has, or
    /// return at once if it is idle (waiting for work, so writing nothing).
    fn request(&self, limit: std::time::Duration) {
        use std::sync::atomic::Ordering;
        let mut state = self.lock();
        state.requested = true;
        self.requested.store(true, Ordering::Release);
        let deadline = std::time::Instant::now() + limit;
        while !state.paused && !state.stopped {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            state = self
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
    }

    /// Checkpointer side: let the writer go on.
    fn release(&self) {
        use std::sync::atomic::Ordering;
        let mut state = self.lock();
        state.requested = false;
        self.requested.store(false, Ordering::Release);
        self.changed.notify_all();
    }

    /// Stop the checkpointer (and never hold the writer again).
    fn stop(&self) {
        let mut state = self.lock();
        state.stopped = true;
        state.requested = false;
        self.requested
            .store(false, std::sync::atomic::Ordering::Release);
        self.changed.notify_all();
    }

    /// Checkpointer side: sleep `interval`; false once stopped.
    fn sleep(&self, interval: std::time::Duration) -> bool {
        let state = self.lock();
        if state.stopped {
            return false;
        }
        let state = self
            .changed
            .wait_timeout_while(state, interval, |s| !s.stopped)
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0;
        !state.stopped
    }
}

/// Copy committed WAL frames into the database file every [`CHECKPOINT_INTERVAL`]; past
/// [`WAL_RESTART_FRAMES`], pause the writer for a last pass so the WAL restarts.
fn checkpointer_loop(path: &Path, pause: &Pause) {
    let Ok(conn) = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    ) else {
        return;
    };
    let passive = |conn: &Connection| -> Option<i64> {
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1))
            .ok()
    };
    while pause.sleep(CHECKPOINT_INTERVAL) {
        let Some(frames) = passive(&conn) else {
            continue;
        };
        if frames >= WAL_RESTART_FRAMES {
            pause.request(std::time::Duration::from_millis(500));
            passive(&conn);
            pause.release();
        }
    }
    let _ = conn.close();
}

fn run_batch(
    conn: &Connection,
    batch: &mut Vec<Work>,
    replies: &mut Vec<Reply>,
) -> Result<(), StoreError> {
    let begun = conn
        .prepare_cached("BEGIN IMMEDIATE")
        .and_then(|mut s| s.execute([]));
    if let Err(e) = begun {
        // Answer every piece of work with the failure, without running it.
        for work in batch.drain(..) {
            let (_, reply) = work(conn);
            replies.push(reply);
        }
        let _ = conn.execute_batch("ROLLBACK");
        return Err(e.into());
    }
    for work in batch.drain(..) {
        let saved = conn
            .prepare_cached("SAVEPOINT work")
            .and_then(|mut s| s.execute([]));
        let (keep, reply) = work(conn);
        if saved.is_ok() {
            if !keep {
                let _ = conn
                    .prepare_cached("ROLLBACK TO work")
                    .and_then(|mut s| s.execute([]));
            }
            let _ = conn
                .prepare_cached("RELEASE work")
                .and_then(|mut s| s.execute([]));
        }
        replies.push(reply);
    }
    match conn
        .prepare_cached("COMMIT")
        .and_then(|mut s| s.execute([]))
    {
        Ok(_) => Ok(()),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e.into())
        }
    }
}

/// Delete session `id`, first carrying its sign-in time into its user's `last_sign_in_ms`.
fn delete_session(conn: &Connection, id: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE users SET last_sign_in_ms = max(last_sign_in_ms,
         (SELECT created_at_ms FROM sessions WHERE id = ?1))
         WHERE id = (SELECT user_id FROM sessions WHERE id = ?1)",
    )?
    .execute([id])?;
    conn.prepare_cached("DELETE FROM sessions WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// A new 19-digit `sub`, like CloudBase's user ids.
fn new_sub() -> String {
    let n = u64::from_le_bytes(random_bytes::<8>());
    (1_000_000_000_000_000_000 + n % 9_000_000_000_000_000_000).to_string()
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
    )
}

fn sign_in_sql(conn: &Connection, new: &NewSession) -> Result<Session, StoreError> {
    let now = new.now_ms as i64;
    let found: Option<(i64, String, i64)> = conn
        .prepare_cached("SELECT id, sub, created_at_ms FROM users WHERE uid = ?1")?
        .query_row([&new.uid], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let (user_id, sub, created_at_ms) = match found {
        // The user's row is not rewritten (one page write less per sign-in): the new
        // session's created_at_ms is the last sign-in until the session ends.
        Some((id, sub, created)) => (id, sub, created),
        None => {
            let mut attempts = 0;
            loop {
                let sub = new_sub();
                match conn
                    .prepare_cached(
                        "INSERT INTO users (sub, uid, created_at_ms, last_sign_in_ms)
                         VALUES (?1, ?2, ?3, ?3)",
                    )?
                    .execute(params![sub, new.uid, now])
                {
                    Ok(_) => break (conn.last_insert_rowid(), sub, now),
                    Err(e) if is_unique_violation(&e) && attempts < 8 => attempts += 1,
                    Err(e) => return Err(e.into()),
                }
            }
        }
    };
    conn.prepare_cached(
        "INSERT INTO sessions (user_id, created_at_ms, refresh_hash, refresh_expires_at_ms,
                               ends_at_ms, access_ttl_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        user_id,
        now,
        new.refresh_hash,
        new.refresh_expires_at_ms.min(new.ends_at_ms) as i64,
        new.ends_at_ms as i64,
        new.access_ttl_ms as i64
    ])?;
    let id = conn.last_insert_rowid();
    let live: i64 = conn
        .prepare_cached("SELECT count(*) FROM sessions WHERE user_id = ?1")?
        .query_row([user_id], |r| r.get(0))?;
    let over = live - i64::from(new.max_sessions_per_user.max(1));
    let capped = if over > 0 {
        conn.prepare_cached(
            "DELETE FROM sessions WHERE id IN
             (SELECT id FROM sessions WHERE user_id = ?1 ORDER BY id LIMIT ?2)",
        )?
        .execute(params![user_id, over])? as u64
    } else {
        0
    };
    Ok(Session {
        id,
        user: User {
            sub,
            uid: new.uid.clone(),
            created_at_ms: created_at_ms as u64,
        },
        ends_at_ms: new.ends_at_ms,
        access_ttl_ms: new.access_ttl_ms,
        capped,
    })
}

/// The session a refresh token names, checked (current token, unexpired, session live),
/// with whether it came through a legacy (JSON-imported) token.
fn refresh_session_sql(
    conn: &Connection,
    key: &RefreshKey,
    now_ms: u64,
) -> Result<Result<(Session, bool), RefreshRefusal>, StoreError> {
    let (id, legacy) = match key {
        RefreshKey::Session { id, .. } => (*id, false),
        RefreshKey::Legacy { hash } => {
            let id: Option<i64> = conn
                .prepare_cached("SELECT session_id FROM legacy_refresh WHERE hash = ?1")?
                .query_row([hash.as_slice()], |r| r.get(0))
                .optional()?;
            match id {
                Some(id) => (id, true),
                None => return Ok(Err(RefreshRefusal::Unknown)),
            }
        }
    };
    type Row = (Vec<u8>, i64, i64, String, String, i64, i64);
    let row: Option<Row> = conn
        .prepare_cached(
            "SELECT s.refresh_hash, s.refresh_expires_at_ms, s.ends_at_ms, u.sub, u.uid,
                    u.created_at_ms, s.access_ttl_ms
             FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = ?1",
        )?
        .query_row([id], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })
        .optional()?;
    let Some((hash, refresh_expires, ends_at, sub, uid, created, access_ttl)) = row else {
        return Ok(Err(RefreshRefusal::Unknown));
    };
    if let RefreshKey::Session { secret_hash, .. } = key
        && !bool::from(hash.as_slice().ct_eq(secret_hash.as_slice()))
    {
        return Ok(Err(RefreshRefusal::Used));
    }
    let now = now_ms as i64;
    if now >= refresh_expires || now >= ends_at {
        return Ok(Err(RefreshRefusal::Expired));
    }
    Ok(Ok((
        Session {
            id,
            user: User {
                sub,
                uid,
                created_at_ms: created as u64,
            },
            ends_at_ms: ends_at as u64,
            access_ttl_ms: access_ttl as u64,
            capped: 0,
        },
        legacy,
    )))
}

fn refresh_sql(
    conn: &Connection,
    key: &RefreshKey,
    now_ms: u64,
    new_hash: &[u8; 32],
    refresh_ttl_ms: u64,
) -> Result<Result<Session, RefreshRefusal>, StoreError> {
    let (session, legacy) = match refresh_session_sql(conn, key, now_ms)? {
        Ok(found) => found,
        Err(refusal) => return Ok(Err(refusal)),
    };
    if legacy {
        conn.prepare_cached("DELETE FROM legacy_refresh WHERE session_id = ?1")?
            .execute([session.id])?;
    }
    let expires = (now_ms.saturating_add(refresh_ttl_ms) as i64).min(session.ends_at_ms as i64);
    conn.prepare_cached(
        "UPDATE sessions SET refresh_hash = ?2, refresh_expires_at_ms = ?3, refreshed_at_ms = ?4
         WHERE id = ?1",
    )?
    .execute(params![
        session.id,
        new_hash.as_slice(),
        expires,
        now_ms as i64
    ])?;
    Ok(Ok(session))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn new_session(uid: &str, now_ms: u64, hash: [u8; 32], cap: u32) -> NewSession {
        NewSession {
            uid: uid.to_string(),
            now_ms,
            refresh_hash: hash,
            refresh_expires_at_ms: now_ms + 1_000,
            ends_at_ms: now_ms + 10_000,
            max_sessions_per_user: cap,
            access_ttl_ms: 500,
        }
    }

    fn key(id: i64, secret: &[u8]) -> RefreshKey {
        RefreshKey::Session {
            id,
            secret_hash: sha256(secret),
        }
    }

    #[test]
    fn same_uid_same_user_refresh_rotates_once_and_the_cap_ends_the_oldest() {
        rt().block_on(async {
            let store = Store::open(None, "env-1", 0, 500).unwrap().store;
            let a = store
                .sign_in(new_session("user_0001", 5, sha256(b"a1"), 2))
                .await
                .unwrap();
            let b = store
                .sign_in(new_session("user_0001", 6, sha256(b"a2"), 2))
                .await
                .unwrap();
            assert_eq!(a.user.sub, b.user.sub);
            assert_eq!(a.user.sub.len(), 19);
            assert_ne!(a.id, b.id);
            let other = store
                .sign_in(new_session("user_0002", 6, sha256(b"o"), 2))
                .await
                .unwrap();
            assert_ne!(other.user.sub, a.user.sub);

            // Rotation: the first redeem works, the second is refused as used.
            let r = store
                .refresh(key(a.id, b"a1"), 50, sha256(b"a1-next"), 1_000)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(r.user.sub, a.user.sub);
            assert_eq!(
                store
                    .refresh(key(a.id, b"a1"), 50, sha256(b"x"), 1_000)
                    .await
                    .unwrap()
                    .unwrap_err(),
                RefreshRefusal::Used
            );
            // Expired (refresh expiry is now 50 + 1000).
            assert_eq!(
                store
                    .refresh(key(a.id, b"a1-next"), 1_050, sha256(b"y"), 1_000)
                    .await
                    .unwrap()
                    .unwrap_err(),
                RefreshRefusal::Expired
            );

            // A third sign-in of user_0001 with a cap of 2 ends the oldest session (a).
            let c = store
                .sign_in(new_session("user_0001", 60, sha256(b"a3"), 2))
                .await
                .unwrap();
            assert_eq!(c.capped, 1);
            assert!(store.session(a.id, 61).await.unwrap().is_none());
            assert!(store.session(b.id, 61).await.unwrap().is_some());
            assert_eq!(
                store
                    .refresh(key(a.id, b"a1-next"), 61, sha256(b"z"), 1_000)
                    .await
                    .unwrap()
                    .unwrap_err(),
                RefreshRefusal::Unknown
            );
            let counts = store.counts(61).await.unwrap();
            assert_eq!(
                counts,
                Counts {
                    users: 2,
                    live_sessions: 3
                }
            );

            // Ending sessions.
            assert!(store.end_session(b.id, b.user.sub.clone()).await.unwrap());
            assert!(!store.end_session(b.id, b.user.sub.clone()).await.unwrap());
            assert_eq!(
                store.end_sessions_of(a.user.sub.clone()).await.unwrap(),
                Some(1)
            );
            assert_eq!(
                store.end_sessions_of("nobody".to_string()).await.unwrap(),
                None
            );
            assert_eq!(store.counts(61).await.unwrap().live_sessions, 1);
        });
    }

    #[test]
    fn prune_deletes_expired_sessions_in_chunks() {
        rt().block_on(async {
            let store = Store::open(None, "env-1", 0, 500).unwrap().store;
            for i in 0..(PRUNE_CHUNK + 10) {
                let uid = format!("user_{i:05}");
                store
                    .sign_in(new_session(&uid, 0, sha256(uid.as_bytes()), 10))
                    .await
                    .unwrap();
            }
            let live = store
                .sign_in(new_session("user_live", 5_000, sha256(b"l"), 10))
                .await
                .unwrap();
            assert_eq!(store.session_rows().await.unwrap(), PRUNE_CHUNK as u64 + 11);
            // Expiry of the first ones is 1000; the last one's 6000.
            assert_eq!(store.prune(1_000).await.unwrap(), PRUNE_CHUNK as u64 + 10);
            assert_eq!(store.session_rows().await.unwrap(), 1);
            assert!(store.session(live.id, 5_500).await.unwrap().is_some());
            // Users stay.
            assert_eq!(
                store.counts(0).await.unwrap().users,
                PRUNE_CHUNK as u64 + 11
            );
        });
    }

    #[test]
    fn session_past_its_end_is_not_live() {
        rt().block_on(async {
            let store = Store::open(None, "env-1", 0, 500).unwrap().store;
            let s = store
                .sign_in(new_session("user_0001", 0, sha256(b"s"), 10))
                .await
                .unwrap();
            assert!(store.session(s.id, 9_999).await.unwrap().is_some());
            assert!(store.session(s.id, 10_000).await.unwrap().is_none());
        });
    }

    #[test]
    fn reset_export_and_import() {
        rt().block_on(async {
            let store = Store::open(None, "env-1", 0, 500).unwrap().store;
            let s = store
                .sign_in(new_session("user_0001", 7, sha256(b"s"), 10))
                .await
                .unwrap();
            let exported = store.export_users().await.unwrap();
            assert_eq!(exported.len(), 1);
            assert_eq!(exported[0].sub, s.user.sub);
            store.reset().await.unwrap();
            assert_eq!(store.counts(0).await.unwrap(), Counts::default());
            assert_eq!(store.import_users(exported.clone()).await.unwrap(), Ok(1));
            // Again: nothing new, no conflict.
            assert_eq!(store.import_users(exported.clone()).await.unwrap(), Ok(0));
            let again = store
                .sign_in(new_session("user_0001", 9, sha256(b"t"), 10))
                .await
                .unwrap();
            assert_eq!(again.user.sub, s.user.sub);
            assert!(again.id > s.id, "session ids are never reused");
            // A conflicting uid is refused and nothing of that import is kept.
            let mut conflicting = exported.clone();
            conflicting[0].sub = "1234567890123456789".to_string();
            conflicting.insert(
                0,
                ExportedUser {
                    sub: "2234567890123456789".into(),
                    uid: "user_0002".into(),
                    created_at_ms: 1,
                    last_sign_in_ms: 1,
                },
            );
            let err = store.import_users(conflicting).await.unwrap().unwrap_err();
            assert!(err.contains("user_0001"), "{err}");
            assert_eq!(store.counts(0).await.unwrap().users, 1);
        });
    }

    #[test]
    fn database_file_keeps_state_is_private_and_locked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let (sub, id) = rt().block_on(async {
            let opened = Store::open(Some(&path), "env-1", 0, 500).unwrap();
            let seed = *opened.seed;
            let s = opened
                .store
                .sign_in(new_session("user_0001", 7, sha256(b"s"), 10))
                .await
                .unwrap();
            // A second open of the same file is refused while this one is open.
            let err = Store::open(Some(&path), "env-1", 0, 500).err().unwrap();
            assert!(
                err.to_string().contains("in use by another emulator"),
                "{err}"
            );
            drop(opened.store);
            let again = Store::open(Some(&path), "env-1", 0, 500).unwrap();
            assert_eq!(*again.seed, seed, "the signing seed is kept");
            (s.user.sub, s.id)
        });
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        rt().block_on(async {
            let store = Store::open(Some(&path), "env-1", 0, 500).unwrap().store;
            let s = store.session(id, 8).await.unwrap().unwrap();
            assert_eq!(s.user.sub, sub);
            // The refresh token survives the restart, once.
            assert!(
                store
                    .refresh(key(id, b"s"), 8, sha256(b"s2"), 100)
                    .await
                    .unwrap()
                    .is_ok()
            );
        });
        let err = Store::open(Some(&path), "env-2", 0, 500).err().unwrap();
        assert!(err.to_string().contains("belongs to env"), "{err}");
    }

    #[test]
    fn a_json_state_file_of_the_earlier_version_is_imported_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let token = "legacy-refresh-token";
        let json = serde_json::json!({
            "format": 1,
            "env": "env-1",
            "access_token_key": STANDARD.encode([3u8; 32]),
            "users": [{"uid": "user_0001", "sub": "1111111111111111111", "created_at_ms": 5}],
            "refresh_tokens": [
                {"sha256": URL_SAFE_NO_PAD.encode(sha256(token.as_bytes())),
                 "sub": "1111111111111111111", "expires_at_ms": 1_000_000},
                {"sha256": URL_SAFE_NO_PAD.encode([9u8; 32]),
                 "sub": "9999999999999999999", "expires_at_ms": 1_000_000}
            ]
        });
        std::fs::write(&path, json.to_string()).unwrap();
        rt().block_on(async {
            let opened = Store::open(Some(&path), "env-1", 10, 500).unwrap();
            assert_eq!(*opened.seed, [3u8; 32]);
            assert_eq!(opened.notices.len(), 1);
            assert!(opened.notices[0].contains("imported 1 users and 1 live refresh tokens"));
            let backup = json_backup_path(&path);
            assert!(backup.exists(), "the JSON file is kept");
            let s = opened
                .store
                .refresh(
                    RefreshKey::Legacy {
                        hash: sha256(token.as_bytes()),
                    },
                    20,
                    sha256(b"new"),
                    100,
                )
                .await
                .unwrap()
                .unwrap();
            assert_eq!(s.user.sub, "1111111111111111111");
            // Used once: gone.
            assert_eq!(
                opened
                    .store
                    .refresh(
                        RefreshKey::Legacy {
                            hash: sha256(token.as_bytes())
                        },
                        20,
                        sha256(b"x"),
                        100
                    )
                    .await
                    .unwrap()
                    .unwrap_err(),
                RefreshRefusal::Unknown
            );
            drop(opened.store);
            // Opening again imports nothing more.
            let again = Store::open(Some(&path), "env-1", 30, 500).unwrap();
            assert!(again.notices.is_empty());
            assert_eq!(again.store.counts(30).await.unwrap().users, 1);
        });
    }

    #[test]
    fn a_file_that_is_neither_is_refused_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        std::fs::write(&path, "not a database at all, just text").unwrap();
        let err = Store::open(Some(&path), "env-1", 0, 500).err().unwrap();
        let msg = err.to_string();
        assert!(msg.contains("state file"), "{msg}");
        assert!(msg.contains("not a SQLite database"), "{msg}");
        std::fs::write(&path, "{\"format\": 2}").unwrap();
        let msg = Store::open(Some(&path), "env-1", 0, 500)
            .err()
            .unwrap()
            .to_string();
        assert!(msg.contains("JSON state file"), "{msg}");
        assert!(
            !json_backup_path(&path).exists(),
            "nothing renamed on refusal"
        );
    }
}
