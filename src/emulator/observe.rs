//! One middleware around every route: injected faults (`POST /emulator/v1/faults`), the
//! request timeout, and the log of the last requests shown on the users page.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::handlers::{ErrorTag, Failure, Kind, Shared};

/// How many requests the log keeps.
pub(crate) const LOG_LEN: usize = 100;
/// Longest path kept in the log.
const LOG_PATH_MAX: usize = 200;

/// A fault armed for the next `remaining` requests to one route.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct Fault {
    pub(crate) route: String,
    /// Requests still to fault.
    pub(crate) count: u64,
    /// 429 or 503, or none (latency only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) status: Option<u16>,
    /// Added before the request is handled (or refused).
    pub(crate) delay_ms: u64,
}

/// The armed faults, by route path.
#[derive(Default)]
pub(crate) struct Faults {
    any: AtomicBool,
    by_route: Mutex<HashMap<String, Fault>>,
}

impl Faults {
    /// Arm `fault` (replacing one armed on the same route).
    pub(crate) fn add(&self, fault: Fault) {
        let mut map = self.lock();
        map.insert(fault.route.clone(), fault);
        self.any.store(true, Ordering::Release);
    }

    /// Disarm every fault.
    pub(crate) fn clear(&self) {
        self.lock().clear();
        self.any.store(false, Ordering::Release);
    }

    /// The armed faults.
    pub(crate) fn list(&self) -> Vec<Fault> {
        let mut list: Vec<Fault> = self.lock().values().cloned().collect();
        list.sort_by(|a, b| a.route.cmp(&b.route));
        list
    }

    /// Take one use of the fault armed on `path`.
    fn take(&self, path: &str) -> Option<(Option<u16>, u64)> {
        if !self.any.load(Ordering::Acquire) {
            return None;
        }
        let mut map = self.lock();
        let fault = map.get_mut(path)?;
        let out = (fault.status, fault.delay_ms);
        fault.count -= 1;
        if fault.count == 0 {
            map.remove(path);
            if map.is_empty() {
                self.any.store(false, Ordering::Release);
            }
        }
        Some(out)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Fault>> {
        self.by_route
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// One logged request (no query string, body or header is kept: they may hold tokens).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct LogEntry {
    /// Emulator time (ms since the epoch, clock offset included).
    pub(crate) at_ms: u64,
    pub(crate) method: String,
    pub(crate) route: String,
    pub(crate) status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error_description: Option<String>,
}

/// The last [`LOG_LEN`] requests to the auth routes.
#[derive(Default)]
pub(crate) struct RequestLog {
    entries: Mutex<VecDeque<LogEntry>>,
}

impl RequestLog {
    fn push(&self, entry: LogEntry) {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() == LOG_LEN {
            entries.pop_front();
        }
        entries.push_back(entry);
    }

    /// Most recent first.
    pub(crate) fn recent(&self) -> Vec<LogEntry> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .rev()
            .cloned()
            .collect()
    }

    pub(crate) fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }
}

/// Whether requests to `path` are logged and may be faulted: everything but the emulator's own
/// page and admin routes.
fn observed(path: &str) -> bool {
    path != "/" && !path.starts_with("/emulator/")
}

/// The middleware: fault, time out, log.
pub(crate) async fn observe(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if !observed(path) {
        // Not faulted or logged, but timed out like every route: a slow body on an admin
        // route must not hold a connection for ever.
        return match tokio::time::timeout(state.request_timeout, next.run(request)).await {
            Ok(response) => response,
            Err(_) => timed_out(&state),
        };
    }
    let route = crate::text::truncate_escaped(path, LOG_PATH_MAX);
    let method = request.method().as_str().to_string();
    let fault = state.faults.take(path);
    let response = match fault {
        Some((status, delay_ms)) => {
            if delay_ms > 0 {
                tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            }
            match status {
                Some(429) => Some(Failure::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    Kind::ResourceExhausted,
                    "EXCEED_RATELIMIT: request rate limit exceeded (a fault injected with POST \
                     /emulator/v1/faults)",
                )),
                Some(_) => Some(Failure::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    Kind::Unavailable,
                    "service unavailable (a fault injected with POST /emulator/v1/faults)",
                )),
                None => None,
            }
        }
        None => None,
    };
    let response = match response {
        Some(failure) => {
            state.stats.errors.fetch_add(1, Ordering::Relaxed);
            failure.into_response()
        }
        None => match tokio::time::timeout(state.request_timeout, next.run(request)).await {
            Ok(response) => response,
            Err(_) => timed_out(&state),
        },
    };
    let tag = response.extensions().get::<ErrorTag>();
    state.log.push(LogEntry {
        at_ms: state.clock.now_ms(),
        method,
        route,
        status: response.status().as_u16(),
        error: tag.map(|t| t.error),
        error_description: tag.map(|t| t.description.clone()),
    });
    response
}

/// The 408 answer of a request not read and answered within the request timeout.
fn timed_out(state: &Shared) -> Response {
    state.stats.errors.fetch_add(1, Ordering::Relaxed);
    Failure::new(
        StatusCode::REQUEST_TIMEOUT,
        Kind::DeadlineExceeded,
        format!(
            "the request was not read and answered within {} ms (the request timeout)",
            state.request_timeout.as_millis()
        ),
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_is_used_count_times_then_gone() {
        let faults = Faults::default();
        assert_eq!(faults.take("/a"), None);
        faults.add(Fault {
            route: "/a".into(),
            count: 2,
            status: Some(429),
            delay_ms: 5,
        });
        assert_eq!(faults.take("/b"), None);
        assert_eq!(faults.take("/a"), Some((Some(429), 5)));
        assert_eq!(faults.list()[0].count, 1);
        assert_eq!(faults.take("/a"), Some((Some(429), 5)));
        assert_eq!(faults.take("/a"), None);
        assert!(faults.list().is_empty());
    }

    #[test]
    fn the_log_keeps_the_last_hundred() {
        let log = RequestLog::default();
        for i in 0..150u64 {
            log.push(LogEntry {
                at_ms: i,
                method: "GET".into(),
                route: "/x".into(),
                status: 200,
                error: None,
                error_description: None,
            });
        }
        let recent = log.recent();
        assert_eq!(recent.len(), LOG_LEN);
        assert_eq!(recent[0].at_ms, 149);
        assert_eq!(recent[LOG_LEN - 1].at_ms, 50);
    }
}
