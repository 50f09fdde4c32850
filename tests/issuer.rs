//! Issuer rules: env selection, key size, options, clock, backends, thread-safety.

mod common;

use std::ffi::OsString;

use cloudbase_ticket::clock::{Clock as _, SystemClock};
use cloudbase_ticket::issuer::MAX_SAFE_INTEGER;
use cloudbase_ticket::uid::UidError;
use cloudbase_ticket::{Backend, Issuer, IssuerError, TicketError, TicketOptions};
use common::{credentials, main_credentials};

const NOW: u64 = 1_758_597_487_691;
const MAIN_ENV: &str = "cloudbase-test-1a2b3c";

fn vars(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<OsString> {
    move |name| {
        pairs
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| OsString::from(v))
    }
}

fn claims_of(ticket: &str) -> cloudbase_ticket::ticket::Claims {
    cloudbase_ticket::ticket::insecure_decode(ticket)
        .unwrap()
        .claims()
        .clone()
}

#[test]
fn issuer_is_send_sync_and_cheap_to_share() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<Issuer>();
    assert_send_sync::<cloudbase_ticket::Credentials>();
    assert_send_sync::<cloudbase_ticket::Verifier>();
}

#[test]
fn env_defaults_to_the_keys_env_id_and_explicit_env_must_match() {
    let issuer = Issuer::new(main_credentials()).unwrap();
    assert_eq!(issuer.env(), MAIN_ENV);
    let issuer = Issuer::builder(main_credentials())
        .env(MAIN_ENV)
        .build()
        .unwrap();
    assert_eq!(
        claims_of(&issuer.create_ticket("user_0001").unwrap()).env,
        MAIN_ENV
    );
    let err = Issuer::builder(main_credentials())
        .env("other-env")
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        IssuerError::EnvMismatch {
            env: "other-env".into(),
            key_env: MAIN_ENV.into()
        }
    );
    assert_eq!(
        Issuer::builder(main_credentials())
            .env("")
            .build()
            .unwrap_err(),
        IssuerError::EmptyEnv
    );
}

#[test]
fn current_env_reads_tcb_env_then_scf_namespace() {
    let build = |lookup| {
        Issuer::builder(main_credentials())
            .current_env_with(lookup)
            .build()
    };
    assert_eq!(
        build(
            Box::new(vars(&[("TCB_ENV", MAIN_ENV), ("SCF_NAMESPACE", "x")]))
                as Box<dyn Fn(&str) -> _>
        )
        .unwrap()
        .env(),
        MAIN_ENV
    );
    assert_eq!(
        build(Box::new(vars(&[("SCF_NAMESPACE", MAIN_ENV)])))
            .unwrap()
            .env(),
        MAIN_ENV
    );
    // An empty TCB_ENV falls through, as `TCB_ENV || SCF_NAMESPACE` does in node.
    assert_eq!(
        build(Box::new(vars(&[
            ("TCB_ENV", ""),
            ("SCF_NAMESPACE", MAIN_ENV)
        ])))
        .unwrap()
        .env(),
        MAIN_ENV
    );
    assert!(matches!(
        build(Box::new(vars(&[("TCB_ENV", "elsewhere")]))),
        Err(IssuerError::EnvMismatch { .. })
    ));
    assert_eq!(
        build(Box::new(vars(&[]))).unwrap_err(),
        IssuerError::CurrentEnvUnset
    );
}

#[test]
fn keys_without_env_id_need_the_env_and_the_message_says_where_to_put_it() {
    let old_key = credentials("fixtures/keys/rsa1024-no-env-id.json");
    let err = Issuer::new(old_key.clone()).unwrap_err();
    assert!(matches!(err, IssuerError::NoEnv { .. }), "{err:?}");
    let msg = err.to_string();
    for needle in [
        "rsa1024-no-env-id.json",
        "env_id",
        "--env",
        "download a new",
    ] {
        assert!(msg.contains(needle), "{needle:?} not in {msg}");
    }
    // Given explicitly, or as the current env, the env makes the key usable (node-sdk refuses).
    let issuer = Issuer::builder(old_key.clone())
        .env("old-env-1a2b")
        .fixed_now_ms(NOW)
        .build()
        .unwrap();
    assert_eq!(
        claims_of(&issuer.create_ticket("user_0001").unwrap()).env,
        "old-env-1a2b"
    );
    let issuer = Issuer::builder(old_key)
        .current_env_with(vars(&[("TCB_ENV", "old-env-1a2b")]))
        .build()
        .unwrap();
    assert_eq!(issuer.env(), "old-env-1a2b");
}

#[test]
fn strict_key_size_refuses_1024_and_accepts_2048() {
    let err = Issuer::builder(main_credentials())
        .strict_key_size(true)
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        IssuerError::KeyTooSmallForStrict {
            bits: 1024,
            min: 2048
        }
    );
    assert!(
        Issuer::builder(main_credentials())
            .strict_key_size(false)
            .build()
            .is_ok()
    );
    let issuer = Issuer::builder(credentials("fixtures/keys/rsa2048-pkcs1.json"))
        .strict_key_size(true)
        .build()
        .unwrap();
    assert_eq!(issuer.key_bits(), 2048);
}

#[test]
fn node_defaults_for_exp_refresh_and_expire() {
    let issuer = Issuer::builder(main_credentials())
        .fixed_now_ms(NOW)
        .build()
        .unwrap();
    let c = claims_of(&issuer.create_ticket("user_0001").unwrap());
    assert_eq!(
        (c.iat, c.exp, c.refresh, c.expire),
        (NOW, NOW + 600_000, 3_600_000, NOW + 7 * 86_400_000)
    );
    assert_eq!(c.alg.as_deref(), Some("RS256"));
    let c = claims_of(
        &issuer
            .create_ticket_with(
                "user_0001",
                &TicketOptions::new()
                    .with_refresh_ms(0)
                    .with_expire_ms(NOW + 5),
            )
            .unwrap(),
    );
    assert_eq!((c.refresh, c.expire), (0, NOW + 5));
}

#[test]
fn numbers_beyond_javascripts_exact_range_are_refused() {
    let issuer = Issuer::builder(main_credentials())
        .fixed_now_ms(NOW)
        .build()
        .unwrap();
    let err = issuer
        .create_ticket_with(
            "user_0001",
            &TicketOptions::new().with_refresh_ms(MAX_SAFE_INTEGER + 1),
        )
        .unwrap_err();
    assert_eq!(
        err,
        TicketError::OutOfRange {
            field: "refresh",
            value: MAX_SAFE_INTEGER + 1
        }
    );
    let err = issuer
        .create_ticket_with("user_0001", &TicketOptions::new().with_expire_ms(u64::MAX))
        .unwrap_err();
    assert!(matches!(
        err,
        TicketError::OutOfRange {
            field: "expire",
            ..
        }
    ));
    assert!(
        issuer
            .create_ticket_with(
                "user_0001",
                &TicketOptions::new().with_expire_ms(MAX_SAFE_INTEGER)
            )
            .is_ok()
    );
    let far = Issuer::builder(main_credentials())
        .fixed_now_ms(MAX_SAFE_INTEGER)
        .build()
        .unwrap();
    assert!(matches!(
        far.create_ticket("user_0001"),
        Err(TicketError::OutOfRange {
            field: "exp (now + 10 minutes)",
            ..
        })
    ));
    // The message names the value that overflows: with a now a few days before 2^53 - 1, that
    // is the default expire (now + 7 days), not now.
    let near = Issuer::builder(main_credentials())
        .fixed_now_ms(MAX_SAFE_INTEGER - 600_000_000)
        .build()
        .unwrap();
    let e = near.create_ticket("user_0001").unwrap_err();
    assert_eq!(
        e,
        TicketError::OutOfRange {
            field: "expire (now + 7 days, the default)",
            value: MAX_SAFE_INTEGER - 600_000_000 + 7 * 24 * 3600 * 1000
        }
    );
    assert!(
        e.to_string()
            .starts_with("expire (now + 7 days, the default) = "),
        "{e}"
    );
    // With an explicit expire in range, the same now issues.
    assert!(
        near.create_ticket_with(
            "user_0001",
            &TicketOptions::new().with_expire_ms(MAX_SAFE_INTEGER)
        )
        .is_ok()
    );
    let beyond = Issuer::builder(main_credentials())
        .fixed_now_ms(MAX_SAFE_INTEGER + 1)
        .build()
        .unwrap();
    assert!(matches!(
        beyond.create_ticket("user_0001"),
        Err(TicketError::OutOfRange { field: "now", .. })
    ));
}

#[test]
fn bad_uids_are_refused_before_signing_and_leave_the_buffer_alone() {
    let issuer = Issuer::builder(main_credentials())
        .fixed_now_ms(NOW)
        .build()
        .unwrap();
    let mut out = String::from("keep");
    let err = issuer
        .write_ticket("bad uid", &TicketOptions::new(), &mut out)
        .unwrap_err();
    assert!(matches!(
        err,
        TicketError::InvalidUid(UidError::InvalidCharacter {
            ch: ' ',
            position: 4,
            ..
        })
    ));
    assert_eq!(out, "keep");
    issuer
        .write_ticket("user_0001", &TicketOptions::new(), &mut out)
        .unwrap();
    assert_eq!(
        out,
        format!("keep{}", issuer.create_ticket("user_0001").unwrap())
    );
}

#[test]
fn system_clock_is_used_by_default() {
    let before = SystemClock.now_ms();
    let ticket = Issuer::new(main_credentials())
        .unwrap()
        .create_ticket("user_0001")
        .unwrap();
    let after = SystemClock.now_ms();
    let iat = claims_of(&ticket).iat;
    assert!(
        before <= iat && iat <= after,
        "{before} <= {iat} <= {after}"
    );
    assert!(before > 1_700_000_000_000, "milliseconds, not seconds");
}

/// Every key size and format, on every compiled backend: the ticket equals node-sdk's for the
/// same inputs (a golden vector) and an independent verifier accepts it. Meaningful in a
/// single-backend build too: each backend is held to node-sdk, not only to the other backend.
#[test]
fn every_key_size_matches_node_sdk_and_verifies_independently_on_every_backend() {
    #[derive(serde::Deserialize)]
    struct VectorFile {
        vectors: Vec<common::Case>,
    }
    let text =
        std::fs::read_to_string(common::fixture("fixtures/vectors/node-sdk-3.18.3.json")).unwrap();
    let vectors = serde_json::from_str::<VectorFile>(&text).unwrap().vectors;
    let mut checked = 0;
    for path in [
        "fixtures/tcb_custom_login.json",
        "fixtures/keys/rsa1024-pkcs8.json",
        "fixtures/keys/rsa2048-pkcs1.json",
        "fixtures/keys/rsa3072-pkcs8.json",
        "fixtures/keys/rsa4096-pkcs1.json",
        "fixtures/keys/rsa8192-pkcs8.json",
    ] {
        let golden = vectors
            .iter()
            .find(|c| c.credentials == path && c.ticket.is_some())
            .unwrap_or_else(|| panic!("no golden vector for {path}"));
        let creds = credentials(path);
        for backend in Backend::all() {
            let ticket = common::issue(golden, *backend).unwrap();
            assert_eq!(
                Some(&ticket),
                golden.ticket.as_ref(),
                "{path}: {backend} differs from node-sdk"
            );
            let claims = common::verify_independently(&ticket, &creds.public_key());
            assert_eq!(claims["uid"], golden.uid.as_str());
            checked += 1;
        }
    }
    assert_eq!(checked, 6 * Backend::all().len());
}

/// The two backends sign byte-identical tickets (PKCS#1 v1.5 is deterministic). Needs both:
/// `cargo test --all-features` (CI) compiles and runs it; a single-backend build has nothing
/// to compare, and the test above holds each backend to node-sdk instead.
#[cfg(all(feature = "aws-lc", feature = "rust-crypto"))]
#[test]
fn aws_lc_and_rust_crypto_sign_identical_tickets() {
    for path in [
        "fixtures/tcb_custom_login.json",
        "fixtures/keys/rsa2048-pkcs8.json",
        "fixtures/keys/rsa3072-pkcs1.json",
        "fixtures/keys/rsa4096-pkcs8.json",
        "fixtures/keys/rsa8192-pkcs1.json",
    ] {
        let ticket_on = |backend: Backend| {
            let issuer = Issuer::builder(credentials(path))
                .backend(backend)
                .fixed_now_ms(NOW)
                .build()
                .unwrap();
            assert_eq!(issuer.backend(), backend);
            issuer.create_ticket("user-(0001)").unwrap()
        };
        assert_eq!(
            ticket_on(Backend::AwsLc),
            ticket_on(Backend::RustCrypto),
            "{path}: the backends differ"
        );
    }
}

#[test]
fn shared_issuer_across_threads_gives_identical_tickets() {
    let issuer = Issuer::builder(main_credentials())
        .fixed_now_ms(NOW)
        .build()
        .unwrap();
    let expected: Vec<String> = (0..64)
        .map(|i| issuer.create_ticket(&format!("user_{i:04}")).unwrap())
        .collect();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for (i, want) in expected.iter().enumerate() {
                    assert_eq!(
                        &issuer.create_ticket(&format!("user_{i:04}")).unwrap(),
                        want
                    );
                }
            });
        }
    });
}
