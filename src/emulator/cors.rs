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

/// Whether `origin` is `http(s)://localhost`, `http(s)://127.x.y.z` (any address of
/// 127.0.0.0/8, the IPv4 loopback network: an emulator may serve on 127.0.0.2) or
/// `http(s)://[::1]`, with or without a port: the origins a web app under development runs on.
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
    port_ok
        && (matches!(host, "localhost" | "[::1]")
            || host
                .parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| ip.is_loopback()))
}

/// The host of an origin (`scheme://host[:port]`), lowercased, without the port: `[::1]`,
/// `app.example.com`.
fn origin_host(origin: &[u8]) -> Option<String> {
    let origin = std::str::from_utf8(origin).ok()?;
    let rest = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))?;
    Some(authority_host(rest)?.to_ascii_lowercase())
}

/// The host part of `host[:port]` (`[v6]` kept in brackets), or `None` if it is not of that
/// shape.
fn authority_host(authority: &str) -> Option<&str> {
    if authority.starts_with('[') {
        let end = authority.find(']')?;
        let port = &authority[end + 1..];
        return (port.is_empty() || port_ok(port)).then_some(&authority[..=end]);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => (!host.contains(':') && port_ok(&format!(":{port}"))).then_some(host),
        None => Some(authority),
    }
}

/// `:` and 1 to 5 digits.
fn port_ok(port: &str) -> bool {
    port.strip_prefix(':').is_some_and(|digits| {
        (1..=5).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
    })
}

/// Whether a request's `Host` header value is one a page cannot reach through a DNS name it
/// controls (DNS rebinding): an IP literal (`127.0.0.1:8787`, `[::1]:8787`), `localhost`, or
/// the host of a configured origin (`extra`), each with or without a port.
pub(crate) fn is_trusted_host(host: &[u8], extra: &[HeaderValue]) -> bool {
    let Some(name) = std::str::from_utf8(host).ok().and_then(authority_host) else {
        return false;
    };
    let name = name.to_ascii_lowercase();
    if name == "localhost" || name.parse::<std::net::Ipv4Addr>().is_ok() {
        return true;
    }
    if let Some(v6) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']'))
        && v6.parse::<std::net::Ipv6Addr>().is_ok()
    {
        return true;
    }
    extra
        .iter()
        .any(|origin| origin_host(origin.as_bytes()).is_some_and(|h| h == name))
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
            "http://127.0.0.2:9000",
            "http://127.255.0.9",
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
            "http://128.0.0.1",
            "http://127.0.0.256",
            "http://127.1",
        ] {
            assert!(!is_loopback_origin(bad.as_bytes()), "{bad}");
        }
        assert!(!is_loopback_origin(b"http://localhost\xff"));
    }

    #[test]
    fn trusted_hosts_are_ip_literals_localhost_and_configured_origins() {
        let extra = [parse_origin("https://App.Example.com:8443").unwrap()];
        for ok in [
            "127.0.0.1:8787",
            "127.0.0.2",
            "10.0.0.5:80",
            "[::1]:8787",
            "[::1]",
            "localhost",
            "LOCALHOST:3000",
            "app.example.com",
            "app.example.com:8787",
        ] {
            assert!(is_trusted_host(ok.as_bytes(), &extra), "{ok}");
        }
        for bad in [
            "rebind.attacker.tld",
            "rebind.attacker.tld:8787",
            "localhost.attacker.tld",
            "127.0.0.1.nip.io",
            "[::1",
            "[evil]:80",
            "",
            "app.example.com.evil",
            "localhost:x",
        ] {
            assert!(!is_trusted_host(bad.as_bytes(), &extra), "{bad}");
        }
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
