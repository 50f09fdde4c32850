//! The mistakes people make with custom login (issue 9), diagnosed by the library: each kind of
//! mistake has a typed error or warning whose message names the real problem and its fix.
//! The CLI's wording of the same errors is tested in `tests/cli_diagnostics.rs`, the emulator's
//! at the end of this file.

mod common;

use cloudbase_ticket::credentials::{CREDENTIALS_ENV, CredentialsSource};
use cloudbase_ticket::emulator::Emulator;
use cloudbase_ticket::ticket::{self, ParseError, TicketWarning};
use cloudbase_ticket::{
    Credentials, CredentialsError, Issuer, IssuerError, TicketError, TicketOptions, Verifier,
    VerifierError, VerifyError,
};
use common::{credentials, main_credentials, sign_raw};

const NOW: u64 = 1_758_597_487_691;
const MAIN: &str = "fixtures/tcb_custom_login.json";
const MAIN_ENV: &str = "cloudbase-test-1a2b3c";
const HEADER: &str = r#"{"alg":"RS256","typ":"JWT"}"#;

fn issuer() -> Issuer {
    Issuer::builder(main_credentials())
        .fixed_now_ms(NOW)
        .build()
        .unwrap()
}

fn ticket() -> String {
    issuer().create_ticket("user_0001").unwrap()
}

fn verifier() -> Verifier {
    Verifier::builder()
        .credentials(&main_credentials())
        .fixed_now_ms(NOW + 1_000)
        .build()
        .unwrap()
}

fn payload(iat: &str, exp: &str, refresh: &str, expire: &str) -> String {
    format!(
        r#"{{"alg":"RS256","env":"{MAIN_ENV}","iat":{iat},"exp":{exp},"uid":"user_0001","refresh":{refresh},"expire":{expire}}}"#
    )
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Kind 1: time units.

/// One year in seconds: up to it, a duration-like `expire` may be seconds too.
const DURATION_S_UP_TO: u64 = 365 * 24 * 3600;

#[test]
fn an_expire_before_now_is_refused_with_the_time_it_probably_meant() {
    // Durations passed as `expire` (7 days in ms; 2 hours in s and in ms; 30 days in s), an
    // absolute time in seconds, and a real time just before now.
    let dur = "expire is an absolute time in ms since the epoch, not a duration; did you mean";
    for (expire, hints) in [
        (
            7 * 24 * 3600 * 1000,
            vec![
                dur.to_string(),
                format!("now + 604800000 = {} (2025-09-30", NOW + 604_800_000),
            ],
        ),
        (
            3600 * 2,
            vec![
                dur.to_string(),
                format!("now + 7200 = {}", NOW + 7200),
                format!(
                    "or, if 7200 is seconds, now + 7200000 = {} (2025-09-23",
                    NOW + 7_200_000
                ),
            ],
        ),
        (
            7_200_000,
            vec![
                dur.to_string(),
                format!("now + 7200000 = {}", NOW + 7_200_000),
            ],
        ),
        (
            30 * 24 * 3600,
            vec![
                format!("now + 2592000 = {}", NOW + 2_592_000),
                format!(
                    "if 2592000 is seconds, now + 2592000000 = {}",
                    NOW + 2_592_000_000
                ),
            ],
        ),
        (
            NOW / 1000 + 3600,
            vec![
                "not seconds; as seconds it would be 2025-09-23 04:18 UTC: multiply by 1000"
                    .to_string(),
            ],
        ),
        // 30 days in ms: in the seconds range, but as seconds it would be 2052: a duration.
        (
            30 * 24 * 3600 * 1000,
            vec![format!(
                "did you mean now + 2592000000 = {}",
                NOW + 2_592_000_000
            )],
        ),
        // A time in seconds that is now (or a bit before): read as seconds, and told to be
        // later too.
        (
            NOW / 1000,
            vec![
                "not seconds; as seconds it would be 2025-09-23 03:18 UTC: multiply by 1000, and \
                 make it later than now"
                    .to_string(),
            ],
        ),
        // 0, "not set": leave it out.
        (
            0,
            vec![format!(
                "so 0 is 1970; leave expire out for the default, now + 7 days = {}",
                NOW + 604_800_000
            )],
        ),
        // An absolute time, 1 ms too early: no "did you mean now + 1758597487690".
        (
            NOW - 1,
            vec![format!(
                "and it must be later than now (the default is now + 7 days = {})",
                NOW + 604_800_000
            )],
        ),
    ] {
        let err = issuer()
            .create_ticket_with("user_0001", &TicketOptions::new().with_expire_ms(expire))
            .unwrap_err();
        assert_eq!(
            err,
            TicketError::ExpireBeforeIssue {
                expire_ms: expire,
                now_ms: NOW
            }
        );
        let msg = err.to_string();
        assert!(
            msg.contains("expire is an absolute time in ms since the epoch"),
            "{msg}"
        );
        for hint in hints {
            assert!(msg.contains(&hint), "{hint:?} not in {msg}");
        }
        if expire > DURATION_S_UP_TO {
            assert!(!msg.contains("is seconds"), "{msg}");
        }
        if expire == NOW - 1 || expire == 0 || expire == NOW / 1000 {
            assert!(!msg.contains("did you mean"), "{msg}");
        }
    }
    // Now itself, and anything after it, is an absolute time: issued.
    for expire in [NOW, NOW + 1, NOW + 604_800_000] {
        let ticket = issuer()
            .create_ticket_with("user_0001", &TicketOptions::new().with_expire_ms(expire))
            .unwrap();
        assert_eq!(
            ticket::insecure_decode(&ticket).unwrap().claims().expire,
            expire
        );
    }
}

#[test]
fn an_issuer_whose_clock_reads_seconds_warns_before_issuing() {
    let seconds = Issuer::builder(main_credentials())
        .fixed_now_ms(NOW / 1000)
        .build()
        .unwrap();
    let options = TicketOptions::new().with_refresh_ms(3600);
    assert_eq!(
        seconds.warnings(&options),
        [
            TicketWarning::TimesInSeconds {
                iat: NOW / 1000,
                exp: NOW / 1000 + 600_000
            },
            TicketWarning::RefreshUnderOneMinute { refresh_ms: 3600 }
        ]
    );
    // The ticket is still issued, and the verifier refuses it for the same reason.
    let ticket = seconds
        .create_ticket_with(
            "user_0001",
            &TicketOptions::new().with_expire_ms(NOW / 1000 + 604_800),
        )
        .unwrap();
    let verifier = Verifier::builder()
        .credentials(&main_credentials())
        .fixed_now_ms(NOW / 1000 + 1)
        .build()
        .unwrap();
    assert!(matches!(
        verifier.verify(&ticket),
        Err(VerifyError::TimesInSeconds { .. })
    ));
    // A clock in milliseconds: only the options' warnings.
    assert_eq!(issuer().warnings(&TicketOptions::new()), []);
    assert_eq!(
        issuer().warnings(&options),
        [TicketWarning::RefreshUnderOneMinute { refresh_ms: 3600 }]
    );
}

#[test]
fn a_refresh_under_a_minute_is_issued_with_a_warning() {
    for refresh in [0, 1, 60, 3600, 59_999] {
        let options = TicketOptions::new().with_refresh_ms(refresh);
        assert_eq!(
            options.warnings(),
            [TicketWarning::RefreshUnderOneMinute {
                refresh_ms: refresh
            }]
        );
        let ticket = issuer().create_ticket_with("user_0001", &options).unwrap();
        let verified = verifier().verify(&ticket).unwrap();
        assert_eq!(
            verified.claims().warnings(),
            [TicketWarning::RefreshUnderOneMinute {
                refresh_ms: refresh
            }]
        );
    }
    let msg = TicketOptions::new()
        .with_refresh_ms(3600)
        .warnings()
        .remove(0)
        .to_string();
    assert_eq!(
        msg,
        "refresh is 3600 ms (3.6 s), under one minute: refresh is in milliseconds; if 3600 is \
         seconds, use 3600000"
    );
    // 0 is no unit mistake: no "if 0 is seconds, use 0".
    let msg = TicketOptions::new()
        .with_refresh_ms(0)
        .warnings()
        .remove(0)
        .to_string();
    assert_eq!(
        msg,
        "refresh is 0 ms: every access token would expire at once; refresh is the access-token \
         lifetime in milliseconds (default 3600000, one hour)"
    );
    for refresh in [60_000, 3_600_000] {
        assert!(
            TicketOptions::new()
                .with_refresh_ms(refresh)
                .warnings()
                .is_empty()
        );
    }
    assert!(TicketOptions::new().warnings().is_empty());
}

#[test]
fn times_in_seconds_are_named_by_verify_and_inspect() {
    let s = NOW / 1000;
    // iat/exp in seconds (expire too, or in ms): a third-party issuer's mistake.
    for text in [
        payload(
            &s.to_string(),
            &(s + 600).to_string(),
            "3600000",
            &(s + 604_800).to_string(),
        ),
        payload(
            &s.to_string(),
            &(s + 600).to_string(),
            "3600",
            &(NOW + 604_800_000).to_string(),
        ),
    ] {
        let ticket = sign_raw(MAIN, HEADER, &text);
        let err = verifier().verify(&ticket).unwrap_err();
        assert_eq!(
            err,
            VerifyError::TimesInSeconds {
                iat: s,
                exp: s + 600
            }
        );
        let msg = err.to_string();
        assert!(msg.contains("look like seconds, not milliseconds"), "{msg}");
        assert!(msg.contains("2025-09-23 as seconds"), "{msg}");
        let inspection = ticket::inspect(&ticket);
        assert!(inspection.problems().is_empty());
        assert!(matches!(
            inspection.warnings()[0],
            TicketWarning::TimesInSeconds { .. }
        ));
    }
}

#[test]
fn a_received_ticket_whose_expire_is_a_duration_is_refused() {
    let text = payload(
        &NOW.to_string(),
        &(NOW + 600_000).to_string(),
        "3600000",
        "604800000",
    );
    let ticket = sign_raw(MAIN, HEADER, &text);
    let err = verifier().verify(&ticket).unwrap_err();
    assert_eq!(
        err,
        VerifyError::ExpireBeforeIssue {
            expire_ms: 604_800_000,
            iat_ms: NOW
        }
    );
    assert!(
        err.to_string().contains("did you mean iat + 604800000"),
        "{err}"
    );
    assert!(matches!(
        ticket::inspect(&ticket).warnings(),
        [TicketWarning::ExpireBeforeIssue { .. }]
    ));
}

// ---------------------------------------------------------------------------------------------
// Kind 2: tickets damaged on the way.

#[test]
fn surrounding_whitespace_is_trimmed_silently() {
    let t = ticket();
    for wrapped in [
        format!("{t}\n"),
        format!("{t}\r\n"),
        format!("  {t}\t"),
        format!("\u{feff}{t}\n"),
        format!("\n\n{t}\n\n"),
    ] {
        assert_eq!(
            verifier().verify(&wrapped).unwrap().claims().uid,
            "user_0001",
            "{wrapped:?}"
        );
    }
}

#[test]
fn quoted_tickets_are_named() {
    let t = ticket();
    for quoted in [
        format!("\"{t}\""),
        serde_json::to_string(&t).unwrap(),
        format!("\\\"{t}\\\""),
        format!("'{t}'"),
        format!("\u{201c}{t}\u{201d}"),
        format!("\"{t}"),
    ] {
        let err = ticket::insecure_decode(&quoted).unwrap_err();
        assert_eq!(err, ParseError::Quoted, "{quoted}");
        assert!(err.to_string().contains("JSON-decode it"), "{err}");
        assert_eq!(
            verifier().verify(&quoted).unwrap_err(),
            VerifyError::Malformed(ParseError::Quoted)
        );
    }
}

#[test]
fn percent_encoded_tickets_are_named() {
    let t = ticket();
    let separator_only = t.replace("/@@/", "%2F%40%40%2F");
    let lower = t.replace("/@@/", "%2f%40%40%2f");
    let at_signs_only = t.replace("/@@/", "/%40%40/");
    for encoded in [percent_encode(&t), separator_only, lower, at_signs_only] {
        let err = ticket::insecure_decode(&encoded).unwrap_err();
        assert_eq!(err, ParseError::PercentEncoded, "{encoded}");
        assert!(err.to_string().contains("URL-decode it"), "{err}");
    }
}

#[test]
fn a_json_object_where_the_ticket_belongs_is_named_with_its_field() {
    let t = ticket();
    for (object, field) in [
        (format!(r#"{{"ticket":"{t}"}}"#), Some("ticket")),
        (
            format!(r#"{{"data":"{t}","status":200,"headers":{{}}}}"#),
            Some("data"),
        ),
        (
            format!(r#"{{"code":0,"data":{{"ticket":"{t}"}}}}"#),
            Some("data.ticket"),
        ),
        (r#"{"status":500}"#.to_string(), None),
        (format!(r#"{{"ticket":"{t}""#), None),
    ] {
        let err = ticket::insecure_decode(&object).unwrap_err();
        assert_eq!(
            err,
            ParseError::JsonObject {
                field: field.map(str::to_string)
            }
        );
        let msg = err.to_string();
        match field {
            Some(field) => assert!(msg.contains(&format!("its field `{field}`")), "{msg}"),
            None => assert!(msg.contains("pass the ticket string"), "{msg}"),
        }
    }
}

#[test]
fn whitespace_inside_a_ticket_is_named() {
    let t = ticket();
    let at = t.len() / 2;
    for broken in [
        format!("{}\n{}", &t[..at], &t[at..]),
        format!("{} {}", &t[..at], &t[at..]),
    ] {
        assert_eq!(
            ticket::insecure_decode(&broken).unwrap_err(),
            ParseError::ContainsWhitespace { position: at + 1 }
        );
    }
    // A JSON array holding the ticket, and the inside of a JSON string (`\/` escapes).
    assert_eq!(
        ticket::insecure_decode(&format!("[\"{t}\"]")).unwrap_err(),
        ParseError::JsonArray
    );
    let escaped = t.replace('/', "\\/");
    let err = verifier().verify(&escaped).unwrap_err();
    assert_eq!(err, VerifyError::Malformed(ParseError::JsonEscaped));
    assert!(err.to_string().contains("JSON-decode it"), "{err}");
    assert!(ParseError::JsonEscaped.is_damage() && ParseError::JsonArray.is_damage());
    // A whole Authorization header value: the scheme is named, not "whitespace at 7", after
    // a space or a tab.
    for (scheme, gap) in [("Bearer", " "), ("bearer", "\t"), ("Basic", " ")] {
        let err = verifier().verify(&format!("{scheme}{gap}{t}")).unwrap_err();
        assert_eq!(
            err,
            VerifyError::Malformed(ParseError::AuthScheme {
                scheme: scheme.to_string()
            })
        );
        assert!(
            err.to_string().contains(&format!(
                "ticket starts with \"{scheme} \", an Authorization"
            )),
            "{err}"
        );
    }
}

#[test]
fn every_cut_of_a_ticket_is_named_truncated() {
    let t = ticket();
    let jwt_start = t.find("/@@/").unwrap() + 4;
    for len in jwt_start..t.len() {
        let cut = &t[..len];
        let err = verifier().verify(cut).unwrap_err();
        assert!(
            matches!(err, VerifyError::Malformed(ParseError::Truncated { .. })),
            "cut at {len} of {}: {err}",
            t.len()
        );
        assert!(err.to_string().contains("truncated"), "{err}");
    }
    // Where it ends is named: in the header, the payload, or the signature.
    let dot1 = t[jwt_start..].find('.').unwrap() + jwt_start;
    let part = |len: usize| match ticket::insecure_decode(&t[..len]) {
        Err(ParseError::Truncated { part }) => part,
        other => panic!("{other:?}"),
    };
    assert_eq!(part(dot1 - 3), "header");
    assert_eq!(part(dot1 + 20), "payload");
    assert_eq!(part(t.len() - 50), "signature");
}

#[test]
fn a_bare_jwt_and_a_non_ticket_are_told_apart() {
    let t = ticket();
    let jwt = t.split_once("/@@/").unwrap().1;
    assert_eq!(
        ticket::insecure_decode(jwt).unwrap_err(),
        ParseError::MissingKeyId
    );
    assert_eq!(
        ticket::insecure_decode("hello").unwrap_err(),
        ParseError::NoSeparator
    );
    assert_eq!(
        ticket::insecure_decode("  \n").unwrap_err(),
        ParseError::Empty
    );
}

// ---------------------------------------------------------------------------------------------
// Kind 3: inspect shows what it can.

#[test]
fn inspect_names_each_missing_or_wrong_typed_claim_and_shows_the_rest() {
    let missing =
        r#"{"alg":"RS256","env":"e","iat":1758597487691,"exp":1758598087691,"uid":"user_0001"}"#;
    let inspection = ticket::inspect(&sign_raw(MAIN, HEADER, missing));
    assert_eq!(
        inspection
            .problems()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        [
            "claim `refresh` is missing from the ticket payload",
            "claim `expire` is missing from the ticket payload"
        ]
    );
    assert_eq!(inspection.claims_json().unwrap()["uid"], "user_0001");
    assert_eq!(inspection.header_json().unwrap()["alg"], "RS256");
    assert!(inspection.claims().is_none());

    let wrong = r#"{"env":"e","iat":1758597487691.5,"exp":"1758598087691","uid":7,"refresh":-1,"expire":1759202287691.0}"#;
    let inspection = ticket::inspect(&sign_raw(MAIN, HEADER, wrong));
    let problems: Vec<String> = inspection
        .problems()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        problems,
        [
            "claim `iat` is a floating-point number (1758597487691.5), expected an integer of milliseconds",
            "claim `exp` is a string, expected an integer of milliseconds",
            "claim `uid` is a number (7), expected a string",
            "claim `refresh` is a negative number (-1), expected an integer of milliseconds",
            "claim `expire` is a floating-point number (1759202287691.0), expected an integer of milliseconds",
        ]
    );
    // The verifier names the first one too, and never calls valid JSON invalid.
    let err = verifier()
        .verify(&sign_raw(MAIN, HEADER, wrong))
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("claim `iat` is a floating-point number"),
        "{err}"
    );
    for problem in inspection.problems() {
        assert!(!problem.to_string().contains("not JSON"), "{problem}");
    }
}

#[test]
fn a_ticket_whose_payload_cannot_be_read_still_shows_its_key_id_and_header() {
    let t = ticket();
    let (head, rest) = t.split_once("/@@/").unwrap();
    let parts: Vec<&str> = rest.split('.').collect();
    for bad_payload in ["!!!", "bm90IGpzb24", "W10"] {
        let broken = format!("{head}/@@/{}.{bad_payload}.{}", parts[0], parts[2]);
        let inspection = ticket::inspect(&broken);
        assert_eq!(inspection.key_id(), Some(head));
        assert_eq!(inspection.header_json().unwrap()["typ"], "JWT");
        assert!(inspection.claims_json().is_none());
        assert_eq!(inspection.signature_len(), Some(128));
        let problem = &inspection.problems()[0];
        match bad_payload {
            "!!!" => assert_eq!(*problem, ParseError::BadBase64 { part: "payload" }),
            "W10" => assert_eq!(
                *problem,
                ParseError::NotAnObject {
                    part: "payload",
                    found: "an array"
                }
            ),
            _ => assert!(matches!(
                problem,
                ParseError::BadJson {
                    part: "payload",
                    ..
                }
            )),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Kind 4: where the env comes from.

#[test]
fn a_key_without_env_id_works_wherever_the_env_is_given() {
    let old = credentials("fixtures/keys/rsa1024-no-env-id.json");
    let issuer = Issuer::builder(old.clone())
        .env("old-env-1a2b")
        .fixed_now_ms(NOW)
        .build()
        .unwrap();
    let ticket = issuer.create_ticket("user_0001").unwrap();
    // The verifier needs the env as well, and then accepts the ticket.
    let err = Verifier::new(&old).unwrap_err();
    assert!(matches!(err, VerifierError::NoEnv { .. }), "{err:?}");
    assert!(err.to_string().contains("rsa1024-no-env-id.json"), "{err}");
    let verifier = Verifier::builder()
        .credentials(&old)
        .env("old-env-1a2b")
        .fixed_now_ms(NOW)
        .build()
        .unwrap();
    assert_eq!(
        verifier.verify(&ticket).unwrap().claims().env,
        "old-env-1a2b"
    );
    // So does the emulator.
    assert!(Emulator::new(&old).is_err());
    assert!(Emulator::builder(&old).env("old-env-1a2b").build().is_ok());
}

#[test]
fn the_no_env_message_names_the_field_or_variable_to_set() {
    let old_file = credentials("fixtures/keys/rsa1024-no-env-id.json");
    let msg = Issuer::new(old_file).unwrap_err().to_string();
    assert!(msg.contains("add \"env_id\""), "{msg}");

    let main = std::fs::read_to_string(common::fixture(MAIN)).unwrap();
    let main: serde_json::Value = serde_json::from_str(&main).unwrap();
    let (id, pem) = (
        main["private_key_id"].as_str().unwrap().to_string(),
        main["private_key"].as_str().unwrap().to_string(),
    );
    let split = Credentials::from_env_with(|name| match name {
        "TCB_CUSTOM_LOGIN_PRIVATE_KEY_ID" => Some(id.clone().into()),
        "TCB_CUSTOM_LOGIN_PRIVATE_KEY" => Some(pem.clone().into()),
        _ => None,
    })
    .unwrap();
    let err = Issuer::new(split.clone()).unwrap_err();
    assert!(matches!(
        err,
        IssuerError::NoEnv {
            origin: CredentialsSource::Env(_)
        }
    ));
    let msg = err.to_string();
    assert!(msg.contains("TCB_CUSTOM_LOGIN_ENV_ID is not set"), "{msg}");
    assert!(!msg.contains("download"), "{msg}");
    assert!(Issuer::builder(split).env(MAIN_ENV).build().is_ok());
}

// ---------------------------------------------------------------------------------------------
// Kind 5: keys that don't match.

#[test]
fn another_envs_key_is_named_with_both_envs() {
    let other = credentials("fixtures/keys/rsa1024-pkcs1.json");
    let other_env = other.env_id().unwrap().to_string();
    let ticket = Issuer::new(other)
        .unwrap()
        .create_ticket("user_0001")
        .unwrap();
    let err = Verifier::new(&main_credentials())
        .unwrap()
        .verify(&ticket)
        .unwrap_err();
    assert!(matches!(err, VerifyError::OtherEnvKey { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("for env \"{other_env}\"")) && msg.contains(MAIN_ENV),
        "{msg}"
    );
}

#[test]
fn a_regenerated_key_is_hinted_and_a_key_set_accepts_both() {
    let old = main_credentials();
    // A regenerated key: same env, new key id.
    let new = Credentials::generate(MAIN_ENV, 1024).unwrap();
    let new_ticket = Issuer::new(new.clone())
        .unwrap()
        .create_ticket("user_0001")
        .unwrap();
    let err = Verifier::new(&old)
        .unwrap()
        .verify(&new_ticket)
        .unwrap_err();
    assert!(matches!(err, VerifyError::UnknownKeyId { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains(new.private_key_id())
            && msg.contains(old.private_key_id())
            && msg.contains("regenerated"),
        "{msg}"
    );
    // During the two-hour window both keys are valid: a key set picks by key id.
    let both = Verifier::builder()
        .credentials(&old)
        .credentials(&new)
        .build()
        .unwrap();
    assert_eq!(both.key_ids().count(), 2);
    let old_ticket = Issuer::new(old.clone())
        .unwrap()
        .create_ticket("user_0002")
        .unwrap();
    assert_eq!(
        both.verify(&new_ticket).unwrap().key_id(),
        new.private_key_id()
    );
    assert_eq!(
        both.verify(&old_ticket).unwrap().key_id(),
        old.private_key_id()
    );
    // A key of another env cannot join the set.
    let other = credentials("fixtures/keys/rsa1024-pkcs1.json");
    assert!(matches!(
        Verifier::builder()
            .credentials(&old)
            .credentials(&other)
            .build(),
        Err(VerifierError::EnvMismatch { .. })
    ));
    // Nor can a different key under a key id already held.
    let impostor = Credentials::from_parts(
        old.private_key_id(),
        &std::fs::read_to_string(common::fixture("fixtures/keys/rsa1024-pkcs1.json"))
            .map(|t| {
                serde_json::from_str::<serde_json::Value>(&t).unwrap()["private_key"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .unwrap(),
        Some(MAIN_ENV),
    )
    .unwrap();
    assert!(matches!(
        Verifier::builder()
            .credentials(&old)
            .credentials(&impostor)
            .build(),
        Err(VerifierError::DuplicateKeyId { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// Kind 6: credentials from the environment.

#[test]
fn a_credentials_variable_holding_a_path_loads_the_file_or_says_so() {
    let path = common::fixture(MAIN);
    let creds = Credentials::from_env_with(|name| {
        (name == CREDENTIALS_ENV).then(|| path.clone().into_os_string())
    })
    .unwrap();
    assert_eq!(creds.private_key_id(), main_credentials().private_key_id());
    assert_eq!(creds.source(), &CredentialsSource::File(path));

    for missing in [
        "/no/such/dir/tcb_custom_login.json",
        "./keys/key.json",
        "~/tcb.json",
        "key.JSON",
    ] {
        let err =
            Credentials::from_env_with(|name| (name == CREDENTIALS_ENV).then(|| missing.into()))
                .unwrap_err();
        assert!(
            matches!(err, CredentialsError::EnvHoldsMissingPath { .. }),
            "{missing}: {err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains(CREDENTIALS_ENV) && msg.contains(missing) && msg.contains("--credentials"),
            "{msg}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The emulator words the same errors in `error_description`.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_gives_the_same_diagnosis() {
    use cloudbase_ticket::client::{Client, ClientError};
    let creds = main_credentials();
    let rotated = Credentials::generate(MAIN_ENV, 1024).unwrap();
    let server = Emulator::builder(&creds)
        .credentials(&rotated)
        .build()
        .unwrap()
        .start("127.0.0.1:0")
        .await
        .unwrap();
    let client = Client::builder()
        .origin(server.url())
        .client_id(server.env())
        .max_retries(0)
        .build()
        .unwrap();
    let fresh = |c: &Credentials| {
        Issuer::new(c.clone())
            .unwrap()
            .create_ticket("user_0001")
            .unwrap()
    };
    let t = fresh(&creds);
    let s = common::ManualClock::now().get() / 1000;
    let seconds = sign_raw(
        MAIN,
        HEADER,
        &payload(
            &s.to_string(),
            &(s + 600).to_string(),
            "3600000",
            &(s + 604_800).to_string(),
        ),
    );
    let other_env = fresh(&credentials("fixtures/keys/rsa1024-pkcs1.json"));
    let unknown = fresh(&Credentials::generate(MAIN_ENV, 1024).unwrap());
    for (ticket, status, needle) in [
        (format!("\"{t}\""), 400, "wrapped in quotes"),
        (percent_encode(&t), 400, "percent-encoded"),
        (t[..t.len() - 30].to_string(), 400, "truncated"),
        (format!(r#"{{"data":"{t}"}}"#), 400, "its field `data`"),
        (seconds, 401, "seconds, not milliseconds"),
        (other_env, 403, MAIN_ENV),
        (unknown, 401, "regenerated"),
    ] {
        let err = client.sign_in_with_ticket(&ticket).await.unwrap_err();
        let ClientError::Api(api) = &err else {
            panic!("{err:?}")
        };
        assert_eq!(api.status, status, "{api:?}");
        assert!(
            api.error_description.contains(needle),
            "{needle:?}: {api:?}"
        );
    }
    // Both keys of a rotation sign in.
    client.sign_in_with_ticket(&fresh(&creds)).await.unwrap();
    client.sign_in_with_ticket(&fresh(&rotated)).await.unwrap();
    server.shutdown().await.unwrap();
}
