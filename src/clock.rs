//! Where "now" comes from: the issuer, the verifier and the emulator all read time through a
//! [`Clock`], in **milliseconds** since the Unix epoch (what node's `Date.now()` returns and
//! what tickets carry in `iat`, `exp` and `expire`).
//!
//! ```
//! use cloudbase_ticket::clock::{Clock, FixedClock, SystemClock};
//!
//! assert_eq!(FixedClock(1_758_597_487_691).now_ms(), 1_758_597_487_691);
//! assert!(SystemClock.now_ms() > 1_700_000_000_000); // after November 2023, in ms
//! ```

use std::time::{SystemTime, UNIX_EPOCH};

/// A source of "now" in milliseconds since the Unix epoch.
///
/// The default everywhere is [`SystemClock`]; tests and harnesses pin time with
/// [`FixedClock`] (reproducible tickets) or implement the trait to move time by hand.
pub trait Clock: Send + Sync {
    /// Milliseconds since 1970-01-01T00:00:00Z.
    fn now_ms(&self) -> u64;
}

/// The system clock, in milliseconds (what node's `Date.now()` returns). A clock set before
/// 1970 reads as 0.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }
}

/// A clock stopped at a given millisecond since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedClock(pub u64);

impl Clock for FixedClock {
    fn now_ms(&self) -> u64 {
        self.0
    }
}

impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    fn now_ms(&self) -> u64 {
        (**self).now_ms()
    }
}
