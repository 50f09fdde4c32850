//! CORS: which browser origins may call the emulator, with which methods and request headers.
//!
//! Built on tower-http's [`CorsLayer`]; it answers preflights (`OPTIONS` with
//! `Access-Control-Request-Method`) itself and adds the CORS headers to every other response,
//! errors and 404s included.

use std::sync::Arc;

use axum::http::{HeaderName, HeaderValue, Method, request::Parts};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Request headers allowed in cross-origin requests: every header the official web clients set
/// by hand, with the npm file that sets it. (The browser adds the others itself.)
///
/// | header | sent by |
/// |---|---|
/// | `content-type` | every client (`application/json;charset=UTF-8` from `@cloudbase/app@1.8.4` `src/libs/request.ts`) |
/// | `authorization` | `@cloudbase/oauth@3.3.3` `dist/cjs/oauth2client/oauth2client.js` (`Bearer …`), js-sdk 3.7.0 `app/src/libs/request.ts` `fetch` |
/// | `x-device-id`, `x-request-id` | `@cloudbase/oauth@3.3.3` `oauth2client.js` (`DeviceIdHeaderName`, `RequestIdHeaderName`) |
/// | `accept-language` | js-sdk 3.7.0 `app/src/libs/lang.ts` (`LANG_HEADER_KEY`), through the oauth client's `i18n` |
/// | `x-sdk-version` | `@cloudbase/app@1.8.4` `src/libs/request.ts` `beforeEach`; js-sdk 3.7.0 `auth/src/index.ts` |
/// | `x-seqid` | `@cloudbase/app@1.8.4` `src/libs/request.ts` `beforeEach` |
/// | `x-tcb-region`, `x-tcb-trace` | `@cloudbase/app@1.8.4` `src/libs/request.ts` `request` (with `region`; after a traced answer) |
/// | `x-tcb-app-source` | `@cloudbase/app@1.8.4` `src/libs/request.ts` (non-web runtimes) |
/// | `x-cloudbase-credentials` | `@cloudbase/auth@1.8.4` `src/index.ts` `getAuthHeader` (an app may send it) |
/// | `x-request-timestamp` | js-sdk 3.7.0 `app/src/libs/request.ts` (commented out today; harmless) |
/// | `undefined` | `@cloudbase/oauth@3.3.3` `oauth2client.js` `request`: used alone (without js-sdk's `i18n`) it sets a header named by `i18n?.LANG_HEADER_KEY`, which is `undefined` |
pub(crate) const ALLOWED_REQUEST_HEADERS: &[&str] = &[
    "content-type",
    "authorization",
    "x-device-id",
    "x-request-id",
    "accept-language",
    "x-sdk-version",
    "x-seqid",
    "x-tcb-region",
    "x-tcb-trace",
    "x-tcb-app-source",
    "x-cloudbase-credentials",
    "x-request-timestamp",
    "undefined",
];

/// How long a browser may cache a preflight answer: 600 s.
const PREFLIGHT_MAX_AGE_S: u64 = 600;

/// Whether `origin` is `http(s)://localhost`, `http(s)://127.0.0.1` or `http(s)://[::1]`,
/// with or without a port: the origins a web app under development runs on.
pub(crate) fn is_loopback_origin(origin: &[u8]) -> bool {
    let Ok(origin) = std::str::from_utf8(origin) else {
        return false;
    };
    let Some(rest) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    let (host, port) = if let Some(v6) = rest.strip_prefix("[::1]") {
        ("[::1]", v6)
    } else {
        match rest.find(':') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        }
    };
    let port_ok = port.is_empty()
        || port.strip_prefix(':').is_some_and(|digits| {
            (1..=5).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
        });
    port_ok && matches!(host, "localhost" | "127.0.0.1" | "[::1]")
}

/// Check and normalise a configured origin: `scheme://host[:port]`, scheme `http` or `https`,
/// no path, query or trailing slash. Returns it lowercased, as browsers send it.
pub(crate) fn parse_origin(text: &str) -> Result<HeaderValue, &'static str> {
    let origin = text.trim().to_ascii_lowercase();
    if origin == "*" {
        return Err("'*' cannot be used with credentials; name each origin");
    }
    let rest = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .ok_or("an origin starts with http:// or https://")?;
    if rest.is_empty() {
        return Err("the origin has no host");
    }
    if rest
        .bytes()
        .any(|b| matches!(b, b'/' | b'?' | b'#' | b'@') || b.is_ascii_whitespace())
    {
        return Err("an origin is scheme://host[:port], without path, query or user");
    }
    if !rest
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']' | b'_'))
    {
        return Err("the host has characters no origin has");
    }
    HeaderValue::from_str(&origin).map_err(|_| "not a valid header value")
}

/// Whether a browser page of `origin` may call the emulator: a loopback origin
/// ([`is_loopback_origin`]) or one of the configured `extra` origins (exact match, as
/// [`parse_origin`] lowercased them).
pub(crate) fn is_allowed_origin(origin: &HeaderValue, extra: &[HeaderValue]) -> bool {
    is_loopback_origin(origin.as_bytes()) || extra.iter().any(|o| o == origin)
}

/// The CORS layer: loopback origins and the configured `extra` origins (exact matches) are
/// allowed, with credentials (the origin is mirrored, never `*`), the methods the routes use
/// and [`ALLOWED_REQUEST_HEADERS`].
pub(crate) fn layer(extra: Arc<[HeaderValue]>) -> CorsLayer {
    let allow_origin = AllowOrigin::predicate(move |origin: &HeaderValue, _: &Parts| {
        is_allowed_origin(origin, &extra)
    });
    CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_credentials(true)
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers(
            ALLOWED_REQUEST_HEADERS
                .iter()
                .map(|h| HeaderName::from_static(h))
                .collect::<Vec<_>>(),
        )
        .max_age(std::time::Duration::from_secs(PREFLIGHT_MAX_AGE_S))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_origins_with_any_port_and_nothing_else() {
        for ok in [
            "http://localhost",
            "http://localhost:5173",
            "http://127.0.0.1:8080",
            "https://localhost:3000",
            "http://[::1]:4000",
            "http://[::1]",
        ] {
            assert!(is_loopback_origin(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "http://localhost.evil.com",
            "http://127.0.0.1.nip.io:80",
            "http://evil.com",
            "http://localhost:80/",
            "http://localhost:",
            "http://localhost:123456",
            "http://localhost:8o",
            "ftp://localhost",
            "null",
            "localhost:3000",
            "http://[::1]x",
            "http://127.0.0.2",
        ] {
            assert!(!is_loopback_origin(bad.as_bytes()), "{bad}");
        }
        assert!(!is_loopback_origin(b"http://localhost\xff"));
    }

    #[test]
    fn configured_origins_are_checked_and_lowercased() {
        assert_eq!(
            parse_origin("https://App.Example.com").unwrap(),
            "https://app.example.com"
        );
        assert_eq!(
            parse_origin("http://10.0.0.5:8080").unwrap(),
            "http://10.0.0.5:8080"
        );
        for bad in [
            "*",
            "app.example.com",
            "https://",
            "https://app.example.com/",
            "https://app.example.com/login",
            "https://app.example.com?x=1",
            "https://user@app.example.com",
            "https://app example.com",
            "https://app.exa\u{e9}mple.com",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
    }
}
