//! Users and refresh tokens, in memory, optionally loaded from and saved to a JSON file.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::EmulatorError;

/// Version of the state file format.
const STATE_FORMAT: u32 = 1;

/// Random bytes from the OS.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    if getrandom::fill(&mut out).is_err() {
        // The OS generator failing is not recoverable; never hand out predictable tokens.
        std::process::abort();
    }
    out
}

/// A user of the emulator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct User {
    /// The custom user id (the ticket's uid).
    pub(crate) uid: String,
    /// The CloudBase user id.
    pub(crate) sub: String,
    /// When the user first signed in, ms.
    pub(crate) created_at_ms: u64,
}

#[derive(Default)]
struct Users {
    by_uid: HashMap<String, Arc<User>>,
    by_sub: HashMap<String, Arc<User>>,
}

/// A refresh token, known by its SHA-256.
#[derive(Debug, Clone)]
struct RefreshEntry {
    user: Arc<User>,
    expires_at_ms: u64,
    used: bool,
    /// A v1 session token (see [`Store::start_session`]): reusable, never `used`.
    session: bool,
}

/// Why a refresh token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefreshRefusal {
    Unknown,
    Used,
    Expired,
}

/// The emulator's mutable state.
pub(crate) struct Store {
    users: RwLock<Users>,
    refresh: Mutex<HashMap<[u8; 32], RefreshEntry>>,
    dirty: AtomicBool,
}

#[derive(Serialize, Deserialize)]
struct UserRecord {
    uid: String,
    sub: String,
    created_at_ms: u64,
}

#[derive(Serialize, Deserialize)]
struct RefreshRecord {
    /// base64url of the token's SHA-256 (the token itself is never stored).
    sha256: String,
    sub: String,
    expires_at_ms: u64,
    /// A v1 session token (reusable until it expires or the session ends).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    session: bool,
}

#[derive(Serialize, Deserialize)]
struct StateFile {
    format: u32,
    env: String,
    /// base64 of the Ed25519 seed that signs access tokens.
    access_token_key: String,
    users: Vec<UserRecord>,
    refresh_tokens: Vec<RefreshRecord>,
}

/// What a state file holds besides the store.
pub(crate) struct Loaded {
    pub(crate) store: Store,
    pub(crate) seed: Option<Zeroizing<[u8; 32]>>,
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn lock_poisoned<T>(e: std::sync::PoisonError<T>) -> T {
    // A panic never happens while these locks are held (no code in them can panic), but if it
    // did, the maps are still consistent: keep serving.
    e.into_inner()
}

impl Store {
    pub(crate) fn new() -> Self {
        Self {
            users: RwLock::new(Users::default()),
            refresh: Mutex::new(HashMap::new()),
            dirty: AtomicBool::new(false),
        }
    }

    /// The user with custom user id `uid`, created on first sight with a new `sub`.
    pub(crate) fn user_for_uid(&self, uid: &str, now_ms: u64) -> Arc<User> {
        if let Some(user) = self
            .users
            .read()
            .unwrap_or_else(lock_poisoned)
            .by_uid
            .get(uid)
        {
            return Arc::clone(user);
        }
        let mut users = self.users.write().unwrap_or_else(lock_poisoned);
        if let Some(user) = users.by_uid.get(uid) {
            return Arc::clone(user);
        }
        let sub = loop {
            // 19 decimal digits, like CloudBase's user ids.
            let n = u64::from_le_bytes(random_bytes::<8>());
            let sub = (1_000_000_000_000_000_000 + n % 9_000_000_000_000_000_000).to_string();
            if !users.by_sub.contains_key(&sub) {
                break sub;
            }
        };
        let user = Arc::new(User {
            uid: uid.to_string(),
            sub: sub.clone(),
            created_at_ms: now_ms,
        });
        users.by_uid.insert(uid.to_string(), Arc::clone(&user));
        users.by_sub.insert(sub, Arc::clone(&user));
        self.dirty.store(true, Ordering::Relaxed);
        user
    }

    /// The user with CloudBase id `sub`.
    pub(crate) fn user_for_sub(&self, sub: &str) -> Option<Arc<User>> {
        self.users
            .read()
            .unwrap_or_else(lock_poisoned)
            .by_sub
            .get(sub)
            .cloned()
    }

    /// How many users exist.
    pub(crate) fn user_count(&self) -> usize {
        self.users.read().unwrap_or_else(lock_poisoned).by_uid.len()
    }

    /// A new refresh token for `user`, valid until `expires_at_ms`.
    pub(crate) fn issue_refresh_token(&self, user: &Arc<User>, expires_at_ms: u64) -> String {
        let token = URL_SAFE_NO_PAD.encode(random_bytes::<32>());
        let entry = RefreshEntry {
            user: Arc::clone(user),
            expires_at_ms,
            used: false,
            session: false,
        };
        self.refresh
            .lock()
            .unwrap_or_else(lock_poisoned)
            .insert(hash(&token), entry);
        self.dirty.store(true, Ordering::Relaxed);
        token
    }

    /// Use `token` once: its user, or why it is refused. A used token stays known (and refused
    /// as used) until it would have expired.
    pub(crate) fn redeem_refresh_token(
        &self,
        token: &str,
        now_ms: u64,
    ) -> Result<Arc<User>, RefreshRefusal> {
        let key = hash(token);
        let mut map = self.refresh.lock().unwrap_or_else(lock_poisoned);
        let Some(entry) = map.get_mut(&key).filter(|e| !e.session) else {
            return Err(RefreshRefusal::Unknown);
        };
        if now_ms >= entry.expires_at_ms {
            map.remove(&key);
            self.dirty.store(true, Ordering::Relaxed);
            return Err(RefreshRefusal::Expired);
        }
        if entry.used {
            return Err(RefreshRefusal::Used);
        }
        entry.used = true;
        self.dirty.store(true, Ordering::Relaxed);
        Ok(Arc::clone(&entry.user))
    }

    /// Start a v1 login session for `user`: a new refresh token, valid until `expires_at_ms`,
    /// that is NOT used up by a refresh. The v1 clients (`@cloudbase/app@1.8.4`
    /// `src/libs/request.ts` `_refreshAccessToken`) keep the refresh token from
    /// `auth.signInWithTicket` for the whole session and send it with every
    /// `auth.fetchAccessTokenWithRefreshToken`. The session ends at expiry or at
    /// [`end_session`](Self::end_session). Session tokens and the rotating tokens of
    /// [`issue_refresh_token`](Self::issue_refresh_token) are not interchangeable: each kind is
    /// `Unknown` to the other's lookup.
    pub(crate) fn start_session(&self, user: &Arc<User>, expires_at_ms: u64) -> String {
        let token = URL_SAFE_NO_PAD.encode(random_bytes::<32>());
        let entry = RefreshEntry {
            user: Arc::clone(user),
            expires_at_ms,
            used: false,
            session: true,
        };
        self.refresh
            .lock()
            .unwrap_or_else(lock_poisoned)
            .insert(hash(&token), entry);
        self.dirty.store(true, Ordering::Relaxed);
        token
    }

    /// The user of the live v1 session whose refresh token is `token`, without using it up:
    /// `Unknown` if it was never issued as a session token or the session ended, `Expired`
    /// (and forgotten) if `now_ms` is at or past its expiry. Never `Used`.
    pub(crate) fn session_user(
        &self,
        token: &str,
        now_ms: u64,
    ) -> Result<Arc<User>, RefreshRefusal> {
        let key = hash(token);
        let mut map = self.refresh.lock().unwrap_or_else(lock_poisoned);
        let Some(entry) = map.get(&key).filter(|e| e.session) else {
            return Err(RefreshRefusal::Unknown);
        };
        if now_ms >= entry.expires_at_ms {
            map.remove(&key);
            self.dirty.store(true, Ordering::Relaxed);
            return Err(RefreshRefusal::Expired);
        }
        Ok(Arc::clone(&entry.user))
    }

    /// End the v1 session whose refresh token is `token` (`auth.logout`): it is forgotten and
    /// refused from now on. Returns whether a session was live; ending an unknown or ended
    /// session is not an error (a rotating token of the v2 protocol is left alone).
    pub(crate) fn end_session(&self, token: &str) -> bool {
        let key = hash(token);
        let mut map = self.refresh.lock().unwrap_or_else(lock_poisoned);
        if map.get(&key).is_some_and(|e| e.session) {
            map.remove(&key);
            self.dirty.store(true, Ordering::Relaxed);
            true
        } else {
            false
        }
    }

    /// Forget refresh tokens past their expiry.
    pub(crate) fn prune(&self, now_ms: u64) {
        let mut map = self.refresh.lock().unwrap_or_else(lock_poisoned);
        let before = map.len();
        map.retain(|_, e| e.expires_at_ms > now_ms);
        if map.len() != before {
            self.dirty.store(true, Ordering::Relaxed);
        }
    }

    /// How many refresh tokens are live (unused and unexpired) at `now_ms`.
    pub(crate) fn live_refresh_tokens(&self, now_ms: u64) -> usize {
        self.refresh
            .lock()
            .unwrap_or_else(lock_poisoned)
            .values()
            .filter(|e| !e.used && e.expires_at_ms > now_ms)
            .count()
    }

    /// Whether something changed since the last save.
    pub(crate) fn is_dirty(&self) -> bool {
        self.dirty.load(Ordering::Relaxed)
    }

    /// Load `path`; a missing file is an empty store.
    pub(crate) fn load(path: &Path, env: &str) -> Result<Loaded, EmulatorError> {
        let bad = |detail: String| EmulatorError::State {
            path: path.to_path_buf(),
            detail,
        };
        let text = match std::fs::read(path) {
            Ok(text) => Zeroizing::new(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Loaded {
                    store: Store::new(),
                    seed: None,
                });
            }
            Err(e) => return Err(bad(format!("cannot read: {e}"))),
        };
        let file: StateFile = serde_json::from_slice(&text).map_err(|e| {
            bad(format!(
                "not an emulator state file (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        if file.format != STATE_FORMAT {
            return Err(bad(format!(
                "format {} is not the supported format {STATE_FORMAT}",
                file.format
            )));
        }
        if file.env != env {
            return Err(bad(format!(
                "it belongs to env {:?}, not {env:?}",
                file.env
            )));
        }
        let seed: [u8; 32] = STANDARD
            .decode(file.access_token_key.as_bytes())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad("access_token_key is not 32 bytes of base64".to_string()))?;
        let store = Store::new();
        {
            let mut users = store.users.write().unwrap_or_else(lock_poisoned);
            for record in file.users {
                if crate::uid::check_uid(&record.uid).is_err() || record.sub.is_empty() {
                    return Err(bad(format!("user {:?} is not valid", record.uid)));
                }
                if users.by_uid.contains_key(&record.uid) || users.by_sub.contains_key(&record.sub)
                {
                    return Err(bad(format!("user {:?} appears twice", record.uid)));
                }
                let user = Arc::new(User {
                    uid: record.uid,
                    sub: record.sub,
                    created_at_ms: record.created_at_ms,
                });
                users.by_uid.insert(user.uid.clone(), Arc::clone(&user));
                users.by_sub.insert(user.sub.clone(), user);
            }
            let mut map = store.refresh.lock().unwrap_or_else(lock_poisoned);
            for record in file.refresh_tokens {
                let key: [u8; 32] = URL_SAFE_NO_PAD
                    .decode(record.sha256.as_bytes())
                    .ok()
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| bad("a refresh token hash is not 32 bytes".to_string()))?;
                let user = users.by_sub.get(&record.sub).cloned().ok_or_else(|| {
                    bad(format!(
                        "a refresh token names unknown user {:?}",
                        record.sub
                    ))
                })?;
                map.insert(
                    key,
                    RefreshEntry {
                        user,
                        expires_at_ms: record.expires_at_ms,
                        used: false,
                        session: record.session,
                    },
                );
            }
        }
        Ok(Loaded {
            store,
            seed: Some(Zeroizing::new(seed)),
        })
    }

    /// Write users and live refresh tokens to `path` atomically (a temporary file in the same
    /// folder, mode 0600, synced, then renamed over `path`).
    pub(crate) fn save(
        &self,
        path: &Path,
        env: &str,
        seed: &[u8; 32],
        now_ms: u64,
    ) -> Result<(), EmulatorError> {
        // Clear first: a change made while writing marks the store dirty again.
        self.dirty.store(false, Ordering::Relaxed);
        let users: Vec<UserRecord> = {
            let users = self.users.read().unwrap_or_else(lock_poisoned);
            let mut list: Vec<UserRecord> = users
                .by_uid
                .values()
                .map(|u| UserRecord {
                    uid: u.uid.clone(),
                    sub: u.sub.clone(),
                    created_at_ms: u.created_at_ms,
                })
                .collect();
            list.sort_by(|a, b| a.uid.cmp(&b.uid));
            list
        };
        let refresh_tokens: Vec<RefreshRecord> = {
            let map = self.refresh.lock().unwrap_or_else(lock_poisoned);
            map.iter()
                .filter(|(_, e)| !e.used && e.expires_at_ms > now_ms)
                .map(|(k, e)| RefreshRecord {
                    sha256: URL_SAFE_NO_PAD.encode(k),
                    sub: e.user.sub.clone(),
                    expires_at_ms: e.expires_at_ms,
                    session: e.session,
                })
                .collect()
        };
        let file = StateFile {
            format: STATE_FORMAT,
            env: env.to_string(),
            access_token_key: STANDARD.encode(seed),
            users,
            refresh_tokens,
        };
        let json =
            Zeroizing::new(
                serde_json::to_vec_pretty(&file).map_err(|e| EmulatorError::State {
                    path: path.to_path_buf(),
                    detail: format!("cannot encode: {e}"),
                })?,
            );
        drop(Zeroizing::new(file.access_token_key));
        write_atomically(path, &json).map_err(|e| {
            self.dirty.store(true, Ordering::Relaxed);
            EmulatorError::State {
                path: path.to_path_buf(),
                detail: format!("cannot write: {e}"),
            }
        })
    }
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.tmp", std::process::id()));
    path.with_file_name(name)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temp = temp_path(path);
    let _ = std::fs::remove_file(&temp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let result = (|| {
        let mut file = options.open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temp, path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && let Ok(dir) = std::fs::File::open(dir)
        {
            let _ = dir.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_uid_same_user_and_refresh_tokens_rotate_once() {
        let store = Store::new();
        let a = store.user_for_uid("user_0001", 5);
        assert_eq!(store.user_for_uid("user_0001", 9), a);
        assert_ne!(store.user_for_uid("user_0002", 9).sub, a.sub);
        assert_eq!(a.sub.len(), 19);
        assert_eq!(store.user_for_sub(&a.sub), Some(Arc::clone(&a)));

        let token = store.issue_refresh_token(&a, 100);
        assert_eq!(store.live_refresh_tokens(0), 1);
        assert_eq!(store.redeem_refresh_token(&token, 50), Ok(Arc::clone(&a)));
        assert_eq!(
            store.redeem_refresh_token(&token, 50),
            Err(RefreshRefusal::Used)
        );
        assert_eq!(
            store.redeem_refresh_token("nope", 50),
            Err(RefreshRefusal::Unknown)
        );
        let t2 = store.issue_refresh_token(&a, 100);
        assert_eq!(
            store.redeem_refresh_token(&t2, 100),
            Err(RefreshRefusal::Expired)
        );
        assert_eq!(
            store.redeem_refresh_token(&t2, 10),
            Err(RefreshRefusal::Unknown)
        );
    }

    #[test]
    fn sessions_are_reusable_until_ended_or_expired_and_apart_from_rotating_tokens() {
        let store = Store::new();
        let a = store.user_for_uid("user_0001", 5);
        let session = store.start_session(&a, 100);
        assert_eq!(store.session_user(&session, 10), Ok(Arc::clone(&a)));
        assert_eq!(store.session_user(&session, 11), Ok(Arc::clone(&a)));
        assert_eq!(store.live_refresh_tokens(0), 1);
        // The kinds do not mix.
        assert_eq!(
            store.redeem_refresh_token(&session, 12),
            Err(RefreshRefusal::Unknown)
        );
        let rotating = store.issue_refresh_token(&a, 100);
        assert_eq!(
            store.session_user(&rotating, 12),
            Err(RefreshRefusal::Unknown)
        );
        assert!(!store.end_session(&rotating));
        assert_eq!(
            store.redeem_refresh_token(&rotating, 12),
            Ok(Arc::clone(&a))
        );
        // Ended: refused, and ending again is harmless.
        assert!(store.end_session(&session));
        assert!(!store.end_session(&session));
        assert_eq!(
            store.session_user(&session, 13),
            Err(RefreshRefusal::Unknown)
        );
        // Expired: refused as expired once, then unknown.
        let short = store.start_session(&a, 50);
        assert_eq!(store.session_user(&short, 50), Err(RefreshRefusal::Expired));
        assert_eq!(store.session_user(&short, 10), Err(RefreshRefusal::Unknown));
    }

    #[test]
    fn save_and_load_keep_users_and_live_tokens() {
        let dir = std::env::temp_dir().join(format!("cbt-state-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.json");
        let store = Store::new();
        let a = store.user_for_uid("user_0001", 5);
        let live = store.issue_refresh_token(&a, 1_000);
        let session = store.start_session(&a, 1_000);
        let used = store.issue_refresh_token(&a, 1_000);
        store.redeem_refresh_token(&used, 1).unwrap();
        assert!(store.is_dirty());
        store.save(&path, "env-1", &[3; 32], 10).unwrap();
        assert!(!store.is_dirty());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains(&live),
            "the raw refresh token is never stored"
        );

        let loaded = Store::load(&path, "env-1").unwrap();
        assert_eq!(*loaded.seed.unwrap(), [3; 32]);
        let store2 = loaded.store;
        assert_eq!(store2.user_for_uid("user_0001", 99).sub, a.sub);
        assert_eq!(store2.redeem_refresh_token(&live, 20).unwrap().sub, a.sub);
        assert_eq!(store2.session_user(&session, 20).unwrap().sub, a.sub);
        assert_eq!(store2.session_user(&session, 21).unwrap().sub, a.sub);
        assert_eq!(
            store2.redeem_refresh_token(&used, 20),
            Err(RefreshRefusal::Unknown)
        );

        assert!(matches!(
            Store::load(&path, "env-2"),
            Err(EmulatorError::State { .. })
        ));
        std::fs::write(&path, "{").unwrap();
        assert!(matches!(
            Store::load(&path, "env-1"),
            Err(EmulatorError::State { .. })
        ));
        assert!(
            Store::load(&dir.join("missing.json"), "env-1")
                .unwrap()
                .seed
                .is_none()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
