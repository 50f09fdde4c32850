//! AWS-LC backend through `aws-lc-sys`: the only module of this crate with `unsafe` code.
//!
//! `aws-lc-rs` refuses RSA keys under 2048 bits, and the CloudBase console issues 1024-bit
//! keys, so this backend calls AWS-LC's `RSA_*` functions directly. AWS-LC's RSA private-key
//! operation is constant-time and blinded, and it re-checks each signature with the public key
//! before returning it (protection against fault attacks).
//!
//! Ownership: every `RSA*` is owned by exactly one [`RsaHandle`] and freed in its `Drop`.
//! AWS-LC frees key limbs through `OPENSSL_free`, which wipes the memory before releasing it.
//!
//! ## The random generator, seeded ahead of the first signature
//!
//! RSA blinding needs random numbers, so the first signature in a process is the first use of
//! AWS-LC's generator. In `aws-lc-sys` 0.47 (AWS-LC `crypto/fipsmodule/rand/`), each thread has
//! its own CTR-DRBG, seeded from a per-thread seed DRBG, which is seeded from one **per-process**
//! seed DRBG whose root is CPU Jitter Entropy (`entropy/tree_drbg_jitter_entropy.c`). Setting
//! up that process-wide root (`tree_jitter_initialize_once`, under `CRYPTO_once`) samples CPU
//! timing jitter for ~20–60 ms of CPU (20 ms on this project's machine); a thread's own DRBGs
//! then cost microseconds. AWS-LC has no
//! runtime switch to another seed source: the OS-only source is chosen at build time
//! (`DISABLE_CPU_JITTER_ENTROPY`, or `AWS_LC_SYS_NO_JITTER_ENTROPY=1` for `aws-lc-sys`), which
//! a library cannot set for the application that depends on it, and the only runtime override
//! is a `_FOR_TESTING` hook that the bindings do not export.
//!
//! So, because the expensive part is process-wide, [`warm_up_generator`] pays it on a
//! background thread, once per process, as soon as a key is loaded: a ticket issued a few
//! hundred milliseconds later (an app loads its key at start-up) finds the generator ready.
//! Figures: the `Issuer` docs, measured by `scripts/first-ticket.sh`.
//!
//! A process may exit while that thread is seeding: `exit` then runs AWS-LC's global
//! destructors under it, and AWS-LC aborts the process (`tree_jitter_drbg_derive_seed` →
//! `abort`: exit status 134 after the program's work was done; seen in about 1 of 100
//! `keygen` runs). So the first warm-up also registers an `atexit` handler, which runs before
//! the destructors (they were registered first, at start-up, and exit handlers run in
//! reverse): it stops a seeding that has not begun and waits for one that has (at most the
//! ~20–60 ms of the seeding itself).
#![allow(unsafe_code)]

use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Once, OnceLock};
use std::thread::ThreadId;

use aws_lc_sys as sys;
use zeroize::Zeroizing;

use crate::key::{KeyProblem, RsaPublicParts};

/// Length of a SHA-256 digest.
const SHA256_LEN: usize = 32;

/// Starts the warm-up thread at most once per process.
static WARM_UP: Once = Once::new();
/// Set by the warm-up thread once AWS-LC's process-wide generator is seeded.
static GENERATOR_WARM: AtomicBool = AtomicBool::new(false);
/// The thread that seeded it (for the test that it is not the caller's).
static WARMED_ON: OnceLock<ThreadId> = OnceLock::new();
/// The warm-up's progress: [`SEED_PENDING`], [`SEED_RUNNING`] or [`SEED_OVER`].
static SEED_STATE: AtomicU8 = AtomicU8::new(SEED_PENDING);
const SEED_PENDING: u8 = 0;
const SEED_RUNNING: u8 = 1;
/// Seeded, or called off by the exit handler before it began.
const SEED_OVER: u8 = 2;
unsafe extern "C" {
    /// C's `atexit` (ISO C 7.22.4.2; glibc, musl, the MSVC CRT): run `function` at `exit`,
    /// before the handlers registered earlier.
    fn atexit(function: extern "C" fn()) -> std::ffi::c_int;
}

/// At `exit`, before AWS-LC's destructors: call off a seeding that has not begun, wait for
/// one that has (it takes ~20–60 ms of CPU; the wait gives up after 10 s rather than hang an
/// exit). Never panics (a panic here would abort the exit).
extern "C" fn finish_seeding_at_exit() {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while SEED_STATE
        .compare_exchange(SEED_PENDING, SEED_OVER, Ordering::AcqRel, Ordering::Acquire)
        .is_err_and(|state| state == SEED_RUNNING)
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Seed AWS-LC's process-wide random generator on a background thread, once per process (see
/// the module docs). Returns at once. If the thread cannot be started, the first signature
/// seeds the generator itself, as it would without this.
pub(crate) fn warm_up_generator() {
    WARM_UP.call_once(|| {
        // SAFETY: `finish_seeding_at_exit` is a C-ABI function of the right type that never
        // unwinds and only touches this module's statics; `atexit` keeps the pointer, which
        // is valid for the life of the process. Registered before the thread exists, so an
        // `exit` at any later point finds it. If registration fails (it cannot fail for the
        // first 32 handlers), the thread is not started.
        if unsafe { atexit(finish_seeding_at_exit) } != 0 {
            return;
        }
        let spawned = std::thread::Builder::new()
            .name("cloudbase-ticket-seed".into())
            .spawn(|| {
                // Let the thread that loaded the key run on first: a new thread may be
                // scheduled on its core at once, and seeding is ~25-60 ms of busy CPU.
                std::thread::sleep(std::time::Duration::from_millis(1));
                if SEED_STATE
                    .compare_exchange(
                        SEED_PENDING,
                        SEED_RUNNING,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    )
                    .is_err()
                {
                    return; // the process is exiting
                }
                let mut byte = [0u8; 1];
                // SAFETY: `byte` is valid for writes of `byte.len()` bytes; `RAND_bytes` is
                // thread-safe (its state is per thread, the process-wide part is set up under
                // `CRYPTO_once` and a lock) and keeps no pointer. It always returns 1 (it
                // aborts rather than fail), so there is nothing to check.
                unsafe { sys::RAND_bytes(byte.as_mut_ptr(), byte.len()) };
                let _ = WARMED_ON.set(std::thread::current().id());
                GENERATOR_WARM.store(true, Ordering::Release);
                SEED_STATE.store(SEED_OVER, Ordering::Release);
            });
        drop(spawned);
    });
}

/// Whether the warm-up thread has finished seeding AWS-LC's generator.
#[cfg(test)]
pub(crate) fn generator_warm() -> bool {
    GENERATOR_WARM.load(Ordering::Acquire)
}

/// An owned `RSA*`.
struct RsaHandle(NonNull<sys::RSA>);

// SAFETY: AWS-LC documents (include/openssl/rsa.h, "Allocation and destruction") that an `RSA`
// object may be used concurrently on multiple threads by non-mutating functions, and that
// `RSA_sign`/`RSA_verify` are non-mutating for thread-safety purposes (their internal caches
// take AWS-LC's own locks). After construction this crate calls only those functions, plus
// `RSA_free` from `Drop`, which needs `&mut self` and therefore exclusive access.
unsafe impl Send for RsaHandle {}
// SAFETY: see the `Send` impl above: shared references only ever reach non-mutating functions.
unsafe impl Sync for RsaHandle {}

impl Drop for RsaHandle {
    fn drop(&mut self) {
        // SAFETY: `self.0` came from an AWS-LC constructor, is owned by this handle alone and is
        // freed exactly once, here.
        unsafe { sys::RSA_free(self.0.as_ptr()) }
    }
}

impl RsaHandle {
    fn as_ptr(&self) -> *mut sys::RSA {
        self.0.as_ptr()
    }
}

/// The reason of the oldest (most specific) error on this thread's AWS-LC error queue; clears
/// the queue.
fn take_error_reason() -> i32 {
    // SAFETY: the ERR functions only touch this thread's error queue and take no pointers.
    let packed = unsafe {
        let packed = sys::ERR_get_error();
        sys::ERR_clear_error();
        packed
    };
    // ERR_GET_REASON is a C macro: the low 12 bits of the packed code.
    (packed & 0xfff) as i32
}

fn inconsistency_from_reason(reason: i32) -> KeyProblem {
    let text = match reason {
        sys::RSA_R_N_NOT_EQUAL_P_Q => "n is not p·q",
        sys::RSA_R_D_E_NOT_CONGRUENT_TO_1 => "d·e is not 1 modulo the group order",
        sys::RSA_R_CRT_VALUES_INCORRECT | sys::RSA_R_INCONSISTENT_SET_OF_CRT_VALUES => {
            "the CRT values (dP, dQ, qInv) do not match p, q and d"
        }
        sys::RSA_R_BAD_E_VALUE => "the public exponent is not usable",
        sys::RSA_R_BAD_VERSION => "multi-prime RSA keys are not supported",
        _ => "the key's parts do not agree",
    };
    KeyProblem::Inconsistent(text)
}

/// An RSA private key loaded into AWS-LC, checked for consistency.
pub(crate) struct SigningKey {
    rsa: RsaHandle,
    signature_len: usize,
}

impl SigningKey {
    /// Load PKCS#1 `RSAPrivateKey` DER (already structurally checked by [`crate::key`]).
    ///
    /// AWS-LC's parser runs `RSA_check_key`: n = p·q, d·e ≡ 1, and the CRT values.
    ///
    /// Also starts seeding AWS-LC's random generator in the background ([`warm_up_generator`]),
    /// so that the key's first signature does not wait for it.
    pub(crate) fn from_pkcs1_der(der: &[u8]) -> Result<Self, KeyProblem> {
        // SAFETY: `der` is a valid slice for `der.len()` bytes; AWS-LC copies what it needs and
        // does not keep the pointer. A null return means failure and owns nothing.
        let raw = unsafe { sys::RSA_private_key_from_bytes(der.as_ptr(), der.len()) };
        let rsa = match NonNull::new(raw) {
            Some(ptr) => RsaHandle(ptr),
            None => return Err(inconsistency_from_reason(take_error_reason())),
        };
        // SAFETY: `rsa` holds a valid key; `RSA_check_key` takes a const pointer.
        if unsafe { sys::RSA_check_key(rsa.as_ptr()) } != 1 {
            return Err(inconsistency_from_reason(take_error_reason()));
        }
        // SAFETY: `rsa` holds a valid key; `RSA_size` only reads the modulus length.
        let signature_len = unsafe { sys::RSA_size(rsa.as_ptr()) } as usize;
        // After the key is parsed and checked, so that the seeding does not slow that down.
        warm_up_generator();
        Ok(Self { rsa, signature_len })
    }

    /// Length of a signature, in bytes (the modulus length).
    pub(crate) fn signature_len(&self) -> usize {
        self.signature_len
    }

    /// RSASSA-PKCS1-v1_5 over a SHA-256 `digest`, written into `signature`, which must be
    /// exactly [`Self::signature_len`] bytes long.
    pub(crate) fn sign_sha256_digest(
        &self,
        digest: &[u8; SHA256_LEN],
        signature: &mut [u8],
    ) -> Result<(), ()> {
        if signature.len() != self.signature_len {
            return Err(());
        }
        let mut written: std::os::raw::c_uint = 0;
        // SAFETY: `digest` holds 32 bytes, `signature` has exactly `RSA_size(rsa)` bytes (checked
        // above), which is the most `RSA_sign` writes; `written` is a valid out-pointer; `rsa` is
        // a valid private key, and `RSA_sign` is documented as safe to call concurrently.
        let ok = unsafe {
            sys::RSA_sign(
                sys::NID_sha256,
                digest.as_ptr(),
                digest.len(),
                signature.as_mut_ptr(),
                &mut written,
                self.rsa.as_ptr(),
            )
        };
        if ok != 1 || written as usize != self.signature_len {
            take_error_reason();
            return Err(());
        }
        Ok(())
    }
}

/// SHA-256 of `message`.
pub(crate) fn sha256(message: &[u8]) -> [u8; SHA256_LEN] {
    let mut digest = [0u8; SHA256_LEN];
    // SAFETY: `message` is valid for `message.len()` bytes and `digest` has room for the 32
    // bytes `SHA256` writes; `SHA256` keeps no pointer.
    unsafe { sys::SHA256(message.as_ptr(), message.len(), digest.as_mut_ptr()) };
    digest
}

/// Owned `BIGNUM*`, freed (and wiped) on drop.
struct BigNum(NonNull<sys::BIGNUM>);

impl BigNum {
    fn from_be_bytes(bytes: &[u8]) -> Option<Self> {
        // SAFETY: `bytes` is valid for its length; a null `ret` asks AWS-LC to allocate a new
        // BIGNUM, which this wrapper then owns.
        NonNull::new(unsafe { sys::BN_bin2bn(bytes.as_ptr(), bytes.len(), std::ptr::null_mut()) })
            .map(Self)
    }
}

impl Drop for BigNum {
    fn drop(&mut self) {
        // SAFETY: the pointer came from `BN_bin2bn`, is owned by this wrapper alone and is freed
        // exactly once.
        unsafe { sys::BN_free(self.0.as_ptr()) }
    }
}

/// An RSA public key loaded into AWS-LC.
pub(crate) struct VerifyingKey {
    rsa: RsaHandle,
}

impl VerifyingKey {
    pub(crate) fn from_parts(parts: &RsaPublicParts) -> Result<Self, KeyProblem> {
        let bad = || KeyProblem::Inconsistent("the public key is not usable");
        let n = BigNum::from_be_bytes(&parts.n).ok_or_else(bad)?;
        let e = BigNum::from_be_bytes(&parts.e).ok_or_else(bad)?;
        // SAFETY: `n` and `e` are valid BIGNUMs; `RSA_new_public_key` copies them (our wrappers
        // still free the originals) and returns null on failure.
        let raw = unsafe { sys::RSA_new_public_key(n.0.as_ptr(), e.0.as_ptr()) };
        match NonNull::new(raw) {
            Some(ptr) => Ok(Self {
                rsa: RsaHandle(ptr),
            }),
            None => {
                take_error_reason();
                Err(bad())
            }
        }
    }

    /// Whether `signature` is a valid RS256 signature of `message`.
    pub(crate) fn verify_rs256(&self, message: &[u8], signature: &[u8]) -> bool {
        let digest = sha256(message);
        // SAFETY: `digest` and `signature` are valid for their lengths; `rsa` is a valid public
        // key; `RSA_verify` is non-mutating and may run concurrently.
        let ok = unsafe {
            sys::RSA_verify(
                sys::NID_sha256,
                digest.as_ptr(),
                digest.len(),
                signature.as_ptr(),
                signature.len(),
                self.rsa.as_ptr(),
            )
        };
        if ok != 1 {
            take_error_reason();
        }
        ok == 1
    }
}

/// Generate a fresh RSA key (e = 65537) and return it as PKCS#1 DER.
pub(crate) fn generate_pkcs1_der(bits: usize) -> Result<Zeroizing<Vec<u8>>, ()> {
    let bits = std::os::raw::c_int::try_from(bits).map_err(|_| ())?;
    // SAFETY: `RSA_new` returns an owned, empty key or null.
    let rsa = RsaHandle(NonNull::new(unsafe { sys::RSA_new() }).ok_or(())?);
    let e = BigNum::from_be_bytes(&[0x01, 0x00, 0x01]).ok_or(())?;
    // SAFETY: `rsa` is a fresh key owned by us (exclusive access, so the mutating call is fine),
    // `e` a valid BIGNUM that AWS-LC copies, and a null callback is allowed.
    if unsafe { sys::RSA_generate_key_ex(rsa.as_ptr(), bits, e.0.as_ptr(), std::ptr::null_mut()) }
        != 1
    {
        take_error_reason();
        return Err(());
    }
    let mut out: *mut u8 = std::ptr::null_mut();
    let mut out_len: usize = 0;
    // SAFETY: `rsa` holds a complete private key; on success AWS-LC stores a buffer it allocated
    // in `out` and its length in `out_len`.
    if unsafe { sys::RSA_private_key_to_bytes(&mut out, &mut out_len, rsa.as_ptr()) } != 1
        || out.is_null()
    {
        take_error_reason();
        return Err(());
    }
    // SAFETY: on success `out` points to `out_len` initialised bytes owned by us until
    // `OPENSSL_free`, which wipes the buffer before releasing it.
    let der = Zeroizing::new(unsafe { std::slice::from_raw_parts(out, out_len) }.to_vec());
    // SAFETY: `out` was allocated by AWS-LC and is freed exactly once.
    unsafe { sys::OPENSSL_free(out.cast()) };
    Ok(der)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loading a key must start the background seeding of AWS-LC's generator, on a thread of
    /// its own: without it, an app's first ticket waits ~20-60 ms for CPU-jitter entropy.
    #[test]
    fn loading_a_key_seeds_the_generator_on_a_background_thread() {
        let json = include_str!("../../fixtures/tcb_custom_login.json");
        let creds = crate::Credentials::from_json(json).unwrap();
        assert_eq!(creds.signing_key().backend(), crate::Backend::AwsLc);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !generator_warm() {
            assert!(
                std::time::Instant::now() < deadline,
                "loading a key did not seed AWS-LC's generator within 30 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let seeded_on = *WARMED_ON.get().expect("the warm-up thread records itself");
        assert_ne!(seeded_on, std::thread::current().id());
        // Later loads do not start more threads.
        assert!(WARM_UP.is_completed());
    }
}
