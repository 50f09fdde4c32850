//! Loading credentials from every form users ship them in.

mod common;

use std::collections::HashMap;
use std::ffi::OsString;

use base64::Engine as _;
use cloudbase_ticket::credentials::{CredentialsSource, CredentialsWarning};
use cloudbase_ticket::{Backend, Credentials, CredentialsError, Issuer};
use common::{fixture, main_credentials};

const NOW: u64 = 1_758_597_487_691;

fn main_json() -> String {
    std::fs::read_to_string(fixture("fixtures/tcb_custom_login.json")).unwrap()
}

fn main_fields() -> (String, String, String) {
    let v: serde_json::Value = serde_json::from_str(&main_json()).unwrap();
    (
        v["private_key_id"].as_str().unwrap().to_string(),
        v["private_key"].as_str().unwrap().to_string(),
        v["env_id"].as_str().unwrap().to_string(),
    )
}

/// The ticket these credentials make for a fixed uid and clock.
fn ticket_of(creds: Credentials) -> String {
    Issuer::builder(creds)
        .fixed_now_ms(NOW)
        .build()
        .unwrap()
        .create_ticket("user_0001")
        .unwrap()
}

fn env_map(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> + use<> {
    let map: HashMap<String, OsString> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), OsString::from(v)))
        .collect();
    move |name| map.get(name).cloned()
}

#[test]
fn the_console_fixture_loads() {
    let creds = main_credentials();
    assert_eq!(creds.key_bits(), 1024);
    assert_eq!(creds.env_id(), Some("cloudbase-test-1a2b3c"));
    assert_eq!(creds.private_key_id(), main_fields().0);
    assert!(matches!(creds.source(), CredentialsSource::File(_)));
}

#[test]
fn every_size_and_format_loads() {
    for bits in [1024, 2048, 3072, 4096, 8192] {
        for fmt in ["pkcs1", "pkcs8"] {
            let creds =
                Credentials::from_file(fixture(&format!("fixtures/keys/rsa{bits}-{fmt}.json")))
                    .unwrap();
            assert_eq!(creds.key_bits(), bits, "{bits} {fmt}");
        }
    }
}

/// The largest size accepted loads into every compiled backend and signs the same ticket,
/// which an independent verifier accepts.
#[test]
fn an_8192_bit_key_loads_and_signs_on_every_backend() {
    for fmt in ["pkcs1", "pkcs8"] {
        let creds = common::credentials(&format!("fixtures/keys/rsa8192-{fmt}.json"));
        let mut tickets = Vec::new();
        for backend in Backend::all() {
            let on_backend = creds.with_backend(*backend).unwrap();
            assert_eq!(on_backend.key_bits(), 8192);
            let ticket = Issuer::builder(on_backend)
                .fixed_now_ms(NOW)
                .build()
                .unwrap()
                .create_ticket("user_8192")
                .unwrap();
            let claims = common::verify_independently(&ticket, &creds.public_key());
            assert_eq!(claims["uid"], "user_8192");
            tickets.push(ticket);
        }
        assert!(
            tickets.windows(2).all(|w| w[0] == w[1]),
            "{fmt}: backends differ"
        );
    }
}

#[test]
fn json_text_and_file_give_the_same_ticket() {
    let expected = ticket_of(main_credentials());
    assert_eq!(
        ticket_of(Credentials::from_json(&main_json()).unwrap()),
        expected
    );
}

#[test]
fn mangled_pem_text_is_accepted() {
    let expected = ticket_of(main_credentials());
    let (id, pem, env) = main_fields();
    let variants = [
        ("CRLF line ends", pem.replace('\n', "\r\n")),
        ("literal \\n escapes", pem.replace('\n', "\\n")),
        ("literal \\r\\n escapes", pem.replace('\n', "\\r\\n")),
        ("surrounding whitespace", format!("  \n\t{pem}\n\n  ")),
        ("a byte-order mark", format!("\u{feff}{pem}")),
        ("no trailing newline", pem.trim_end().to_string()),
        ("76-column lines", {
            let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
            let wrapped: Vec<String> = body
                .as_bytes()
                .chunks(76)
                .map(|c| String::from_utf8(c.to_vec()).unwrap())
                .collect();
            format!(
                "-----BEGIN RSA PRIVATE KEY-----\n{}\n-----END RSA PRIVATE KEY-----\n",
                wrapped.join("\n")
            )
        }),
    ];
    for (what, pem) in variants {
        let json = serde_json::json!({"private_key_id": id, "private_key": pem, "env_id": env})
            .to_string();
        let creds = Credentials::from_json(&json).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(ticket_of(creds), expected, "{what}");
        let creds = Credentials::from_parts(&id, &pem, Some(&env))
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(ticket_of(creds), expected, "{what} (from_parts)");
    }
}

#[test]
fn pkcs8_form_of_the_same_key_gives_the_same_ticket() {
    // Convert the console's PKCS#1 key to PKCS#8 with openssl-free tooling: the pkcs8 crate.
    use pkcs8::der::Encode as _;
    let (id, pem, env) = main_fields();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let pkcs1 = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap();
    let info = pkcs8::PrivateKeyInfoRef {
        algorithm: pkcs8::AlgorithmIdentifierRef {
            oid: pkcs8::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1"),
            parameters: Some(pkcs8::der::asn1::AnyRef::NULL),
        },
        private_key: pkcs8::der::asn1::OctetStringRef::new(&pkcs1).unwrap(),
        public_key: None,
    };
    let der = info.to_der().unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let pem8 = format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n");
    let creds = Credentials::from_parts(&id, &pem8, Some(&env)).unwrap();
    assert_eq!(ticket_of(creds), ticket_of(main_credentials()));
}

#[test]
fn file_with_bom_and_crlf_json_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tcb_custom_login.json");
    std::fs::write(
        &path,
        format!("\u{feff}{}", main_json().replace('\n', "\r\n")),
    )
    .unwrap();
    assert_eq!(
        ticket_of(Credentials::from_file(&path).unwrap()),
        ticket_of(main_credentials())
    );
}

#[test]
fn environment_json_base64_and_three_variables() {
    let expected = ticket_of(main_credentials());
    let json = main_json();
    let std_b64 = base64::engine::general_purpose::STANDARD.encode(&json);
    let url_b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&json);
    let wrapped: String = std_b64
        .as_bytes()
        .chunks(76)
        .map(|c| format!("{}\n", String::from_utf8_lossy(c)))
        .collect();
    for (what, value) in [
        ("json", json.clone()),
        ("base64", std_b64),
        ("base64url", url_b64),
        ("wrapped base64", wrapped),
    ] {
        let creds =
            Credentials::from_env_with(env_map(&[("TCB_CUSTOM_LOGIN_CREDENTIALS", &value)]))
                .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(
            creds.source(),
            &CredentialsSource::Env("TCB_CUSTOM_LOGIN_CREDENTIALS")
        );
        assert_eq!(ticket_of(creds), expected, "{what}");
    }

    let (id, pem, env) = main_fields();
    let escaped = pem.replace('\n', "\\n");
    for key in [&pem, &escaped] {
        let creds = Credentials::from_env_with(env_map(&[
            ("TCB_CUSTOM_LOGIN_PRIVATE_KEY_ID", &id),
            ("TCB_CUSTOM_LOGIN_PRIVATE_KEY", key),
            ("TCB_CUSTOM_LOGIN_ENV_ID", &env),
        ]))
        .unwrap();
        assert_eq!(ticket_of(creds), expected);
    }

    // The single variable wins over the three; an empty one counts as unset.
    let creds = Credentials::from_env_with(env_map(&[
        ("TCB_CUSTOM_LOGIN_CREDENTIALS", ""),
        ("TCB_CUSTOM_LOGIN_PRIVATE_KEY_ID", &id),
        ("TCB_CUSTOM_LOGIN_PRIVATE_KEY", &pem),
        ("TCB_CUSTOM_LOGIN_ENV_ID", &env),
    ]))
    .unwrap();
    assert_eq!(ticket_of(creds), expected);
}

#[test]
fn environment_errors_name_the_variable() {
    assert_eq!(
        Credentials::from_env_with(env_map(&[])).unwrap_err(),
        CredentialsError::NotInEnvironment
    );
    let (id, pem, _) = main_fields();
    let err =
        Credentials::from_env_with(env_map(&[("TCB_CUSTOM_LOGIN_PRIVATE_KEY", &pem)])).unwrap_err();
    assert_eq!(
        err,
        CredentialsError::MissingField {
            origin: CredentialsSource::Env("TCB_CUSTOM_LOGIN_PRIVATE_KEY_ID"),
            field: "private_key_id"
        }
    );
    assert!(
        err.to_string().contains("TCB_CUSTOM_LOGIN_PRIVATE_KEY_ID"),
        "{err}"
    );
    let err = Credentials::from_env_with(env_map(&[
        ("TCB_CUSTOM_LOGIN_PRIVATE_KEY_ID", &id),
        ("TCB_CUSTOM_LOGIN_PRIVATE_KEY", " "),
    ]))
    .unwrap_err();
    assert!(
        matches!(
            err,
            CredentialsError::EmptyField {
                field: "private_key",
                ..
            }
        ),
        "{err:?}"
    );
    let err = Credentials::from_env_with(env_map(&[(
        "TCB_CUSTOM_LOGIN_CREDENTIALS",
        "%%% not base64 %%%",
    )]))
    .unwrap_err();
    assert!(
        matches!(err, CredentialsError::NotJsonOrBase64 { .. }),
        "{err:?}"
    );
    // Without env_id the credentials load (old key files do), and the issuer refuses them.
    let creds = Credentials::from_env_with(env_map(&[
        ("TCB_CUSTOM_LOGIN_PRIVATE_KEY_ID", &id),
        ("TCB_CUSTOM_LOGIN_PRIVATE_KEY", &pem),
    ]))
    .unwrap();
    assert_eq!(creds.env_id(), None);
}

#[test]
fn debug_output_never_shows_the_key() {
    let creds = main_credentials();
    let (_, pem, _) = main_fields();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let issuer = Issuer::new(creds.clone()).unwrap();
    for text in [
        format!("{creds:?}"),
        format!("{issuer:?}"),
        format!("{:?}", creds.public_key()),
    ] {
        for window in body.as_bytes().windows(16).step_by(7) {
            let window = std::str::from_utf8(window).unwrap();
            assert!(!text.contains(window), "key material in {text}");
        }
        assert!(text.len() < 400, "{text}");
    }
    assert!(format!("{creds:?}").contains("redacted"));
}

#[cfg(unix)]
#[test]
fn loose_file_permissions_are_reported() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key.json");
    std::fs::write(&path, main_json()).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let warnings = Credentials::from_file(&path).unwrap().warnings();
    assert_eq!(
        warnings,
        [CredentialsWarning::LooseFilePermissions {
            path: path.clone(),
            mode: 0o644
        }]
    );
    let text = warnings[0].to_string();
    assert!(text.contains("644") && text.contains("key.json"), "{text}");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(Credentials::from_file(&path).unwrap().warnings(), []);
    assert_eq!(Credentials::from_json(&main_json()).unwrap().warnings(), []);
}

#[test]
fn console_json_round_trips() {
    let creds = main_credentials();
    let json = creds.to_console_json();
    let again = Credentials::from_json(&json).unwrap();
    assert_eq!(again.private_key_id(), creds.private_key_id());
    assert_eq!(ticket_of(again), ticket_of(creds));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(
        v["private_key"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN RSA PRIVATE KEY-----\nMIICXQIBAAKBgQ")
    );
}

#[test]
fn generated_credentials_issue_verifiable_tickets() {
    let creds = Credentials::generate("my-test-env", 1024).unwrap();
    assert_eq!(creds.key_bits(), 1024);
    assert_eq!(creds.env_id(), Some("my-test-env"));
    assert!(uuid::Uuid::parse_str(creds.private_key_id()).is_ok());
    let ticket = Issuer::new(creds.clone())
        .unwrap()
        .create_ticket("user_0001")
        .unwrap();
    common::verify_independently(&ticket, &creds.public_key());
    assert!(Credentials::generate("env", 1000).is_err());
    assert!(Credentials::generate("", 1024).is_err());
}

#[test]
fn key_ids_that_cannot_prefix_a_ticket_are_refused() {
    let (_, pem, env) = main_fields();
    for (id, reason) in [
        ("abc/@@/def", "ticket separator"),
        (" 318ac0e6", "whitespace"),
        ("318ac0e6\t", "whitespace"),
        ("318a\u{1b}[31mc0e6", "control characters"),
    ] {
        let json = serde_json::json!({"private_key_id": id, "private_key": pem, "env_id": env})
            .to_string();
        let err = Credentials::from_json(&json).unwrap_err();
        assert!(
            matches!(err, CredentialsError::InvalidKeyId { .. }),
            "{id:?}: {err:?}"
        );
        assert!(err.to_string().contains(reason), "{err}");
        assert!(!err.to_string().contains('\u{1b}'), "the id is not echoed");
    }
    let long = "k".repeat(257);
    let err = Credentials::from_parts(&long, &pem, Some(&env)).unwrap_err();
    assert!(matches!(err, CredentialsError::InvalidKeyId { .. }));
}

/// An `env_id` that cannot be an env id (the fields mixed up, a pasted line break) is refused
/// before it reaches a ticket, and the value, possibly key material, is never quoted. The same
/// rule holds for an env given to the issuer, the verifier and `generate`.
#[test]
fn env_ids_that_cannot_be_env_ids_are_refused_without_quoting_them() {
    let (id, pem, _) = main_fields();
    for (env, reason) in [
        (pem.as_str(), "holds a PEM key"),
        ("my-env\n1a2b", "control characters"),
        ("my env", "whitespace"),
        (&"e".repeat(129), "longer than 128 bytes"),
    ] {
        let json = serde_json::json!({"private_key_id": id, "private_key": pem, "env_id": env})
            .to_string();
        let err = Credentials::from_json(&json).unwrap_err();
        assert!(
            matches!(&err, CredentialsError::InvalidEnvId { reason: r, .. } if r.contains(reason)),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("field `env_id`") && msg.contains(reason),
            "{msg}"
        );
        assert!(!msg.contains("MII") && !msg.contains('\n'), "{msg}");
        assert!(
            !msg.contains("eeeeeeeeee"),
            "the value is not echoed: {msg}"
        );

        let explicit = Issuer::builder(main_credentials()).env(env).build();
        assert!(
            matches!(&explicit, Err(cloudbase_ticket::IssuerError::InvalidEnv { reason: r }) if r.contains(reason)),
            "{explicit:?}"
        );
        let verifier = cloudbase_ticket::Verifier::builder()
            .credentials(&main_credentials())
            .env(env)
            .build();
        assert!(
            matches!(
                &verifier,
                Err(cloudbase_ticket::VerifierError::InvalidEnv { .. })
            ),
            "{verifier:?}"
        );
        assert!(matches!(
            Credentials::generate(env, 1024),
            Err(cloudbase_ticket::credentials::GenerateError::InvalidEnv { .. })
        ));
    }
    // The longest accepted, and the console's shapes.
    for env in [
        "e".repeat(128),
        "cloudbase-test-1a2b3c".to_string(),
        "prod_01".to_string(),
    ] {
        let json = serde_json::json!({"private_key_id": id, "private_key": pem, "env_id": env})
            .to_string();
        assert_eq!(
            Credentials::from_json(&json).unwrap().env_id(),
            Some(env.as_str())
        );
    }
}

/// The environment mistakes beyond a wrong value: a PEM key where the whole JSON belongs, a
/// folder's path, one of the split variables unset. Each message names the variable and what
/// to set.
#[test]
fn environment_mistakes_say_which_variable_to_set() {
    let (id, pem, _) = main_fields();
    let err =
        Credentials::from_env_with(env_map(&[("TCB_CUSTOM_LOGIN_CREDENTIALS", &pem)])).unwrap_err();
    assert_eq!(
        err,
        CredentialsError::EnvHoldsPem {
            variable: "TCB_CUSTOM_LOGIN_CREDENTIALS"
        }
    );
    let msg = err.to_string();
    assert!(
        msg.contains("holds a PEM key") && msg.contains("TCB_CUSTOM_LOGIN_PRIVATE_KEY with"),
        "{msg}"
    );
    assert!(!msg.contains("MII"), "{msg}");

    // A folder: loaded as a path, so the message is the file loader's, naming the folder.
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().to_str().unwrap();
    let err = Credentials::from_env_with(env_map(&[("TCB_CUSTOM_LOGIN_CREDENTIALS", folder)]))
        .unwrap_err();
    assert!(err.to_string().contains(folder), "{err}");
    assert!(
        !matches!(err, CredentialsError::NotJsonOrBase64 { .. }),
        "{err:?}"
    );

    // Only the key id set: the key's variable is named as unset, not as a "missing field".
    let err = Credentials::from_env_with(env_map(&[("TCB_CUSTOM_LOGIN_PRIVATE_KEY_ID", &id)]))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "environment variable TCB_CUSTOM_LOGIN_PRIVATE_KEY is not set (it holds the \
         `private_key` of tcb_custom_login.json); set it too, or put the whole file's JSON in \
         TCB_CUSTOM_LOGIN_CREDENTIALS"
    );
}

/// A path through a file (`key.json/x`): unreadable, in words, without Rust's "(os error N)",
/// with what to check.
#[test]
fn an_unreadable_path_is_named_in_words() {
    let path = fixture("fixtures/tcb_custom_login.json").join("x");
    let err = Credentials::from_file(&path).unwrap_err();
    assert!(
        matches!(err, CredentialsError::FileUnreadable { .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.ends_with(
            "cannot be read: Not a directory; a part of the path is a file, not a directory"
        ),
        "{msg}"
    );
    assert!(!msg.contains("os error"), "{msg}");
}

/// A field given twice is refused (parsers disagree on which one wins), naming the field.
#[test]
fn a_field_given_twice_is_refused() {
    let (id, pem, env) = main_fields();
    let pem_json = serde_json::to_string(&pem).unwrap();
    for (twice, name) in [
        (
            format!(
                r#"{{"private_key_id":"{id}","private_key":{pem_json},"env_id":"{env}","private_key_id":"other"}}"#
            ),
            "private_key_id",
        ),
        // The same name spelled with an escape is the same field.
        (
            format!(
                r#"{{"private_key_id":"{id}","private_key":{pem_json},"env_id":"{env}","env\u005fid":"x"}}"#
            ),
            "env_id",
        ),
    ] {
        let err = Credentials::from_json(&twice).unwrap_err();
        assert!(
            matches!(err, CredentialsError::InvalidJson { .. }),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("field `{name}` is given twice; keep one")),
            "{msg}"
        );
        assert!(!msg.contains("MII"), "{msg}");
    }
}

/// Second review: each split variable is named when it is the wrong one; the whole-JSON
/// variable's missing field is a field, not an unset variable; invisible characters in an env
/// id; a PEM in the key id; a relative folder and an unexpanded `~` or `$HOME` in the
/// variable.
#[test]
fn environment_messages_name_the_variable_that_is_wrong() {
    let (id, pem, env) = main_fields();
    let err = Credentials::from_env_with(env_map(&[
        ("TCB_CUSTOM_LOGIN_PRIVATE_KEY_ID", &id),
        ("TCB_CUSTOM_LOGIN_PRIVATE_KEY", &pem),
        ("TCB_CUSTOM_LOGIN_ENV_ID", "a b"),
    ]))
    .unwrap_err();
    assert!(
        err.to_string().starts_with(
            "environment variable TCB_CUSTOM_LOGIN_ENV_ID: field `env_id` contains whitespace"
        ),
        "{err}"
    );
    let err = Credentials::from_env_with(env_map(&[
        ("TCB_CUSTOM_LOGIN_PRIVATE_KEY_ID", &pem),
        ("TCB_CUSTOM_LOGIN_PRIVATE_KEY", &pem),
        ("TCB_CUSTOM_LOGIN_ENV_ID", &env),
    ]))
    .unwrap_err();
    assert!(
        err.to_string().starts_with(
            "environment variable TCB_CUSTOM_LOGIN_PRIVATE_KEY_ID: field `private_key_id` holds a \
             PEM key, not a key id (are the fields mixed up?)"
        ),
        "{err}"
    );
    assert!(!err.to_string().contains("MII"));

    let only_key = serde_json::json!({ "private_key": pem }).to_string();
    let err = Credentials::from_env_with(env_map(&[("TCB_CUSTOM_LOGIN_CREDENTIALS", &only_key)]))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "environment variable TCB_CUSTOM_LOGIN_CREDENTIALS: field `private_key_id` is missing"
    );

    for invisible in ["a\u{200b}b", "\u{feff}my-env", "my-env\u{202e}"] {
        let json =
            serde_json::json!({"private_key_id": id, "private_key": pem, "env_id": invisible})
                .to_string();
        let err = Credentials::from_json(&json).unwrap_err();
        assert!(
            err.to_string().contains("contains an invisible character"),
            "{err}"
        );
        assert!(
            !err.to_string().contains(invisible),
            "the value is not quoted: {err}"
        );
        assert!(
            Issuer::builder(main_credentials())
                .env(invisible)
                .build()
                .is_err()
        );
    }

    // A relative folder is loaded as a path (and refused as a folder), not parsed as JSON.
    // (Tests run in the package root, where `tests` is a folder.)
    assert!(std::path::Path::new("tests").is_dir());
    let err = Credentials::from_env_with(env_map(&[("TCB_CUSTOM_LOGIN_CREDENTIALS", "tests")]))
        .unwrap_err();
    assert!(
        matches!(err, CredentialsError::IsDirectory { .. }),
        "{err:?}"
    );

    for unexpanded in [
        "~/keys/tcb_custom_login.json",
        "$HOME/tcb_custom_login.json",
    ] {
        let err =
            Credentials::from_env_with(env_map(&[("TCB_CUSTOM_LOGIN_CREDENTIALS", unexpanded)]))
                .unwrap_err();
        assert!(
            matches!(err, CredentialsError::EnvHoldsMissingPath { .. }),
            "{unexpanded}: {err:?}"
        );
        assert!(err.to_string().contains("was never expanded"), "{err}");
    }
}
