//! Malformed credentials and uids: each is refused with its specific error variant, nothing
//! panics, and no `Display`, `Debug` or CLI output repeats any 16-character piece of a key's
//! base64 body.
//!
//! Keys made with `openssl` live in `tests/bad_inputs/keys/` (test-only, see the README there);
//! the other cases are built here from the fixture keys. The loaders use the default backend,
//! so the RustCrypto backend's checks run in a build without AWS-LC:
//! `cargo test --no-default-features --features rust-crypto,cli --test bad_inputs`.

mod common;
#[path = "common/fuzz_checks.rs"]
mod fuzz_checks;

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use cloudbase_ticket::credentials::{
    CREDENTIALS_ENV, CredentialsSource, ENV_ID_ENV, MAX_CREDENTIALS_LEN, PRIVATE_KEY_ENV,
    PRIVATE_KEY_ID_ENV,
};
use cloudbase_ticket::uid::{UidError, check_uid};
use cloudbase_ticket::{Backend, Credentials, CredentialsError as E, Issuer, TicketError};
use fuzz_checks::{
    WINDOW, add_windows, assert_no_key_material, assert_one_short_line, find_window, os_string,
    pem_bodies,
};

// ---------------------------------------------------------------------------------------------
// Building inputs

fn main_pem() -> String {
    fixture_pem("fixtures/tcb_custom_login.json")
}

fn fixture_pem(rel: &str) -> String {
    let text = std::fs::read_to_string(common::fixture(rel)).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["private_key"].as_str().unwrap().to_string()
}

fn bad_key(name: &str) -> String {
    std::fs::read_to_string(common::fixture("tests/bad_inputs/keys").join(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A console-shaped credentials file around `pem`.
fn console_json(pem: &str) -> String {
    serde_json::to_string_pretty(&serde_json::json!({
        "private_key_id": "318ac0e6-d672-4a51-a750-5ca5b38fe914",
        "private_key": pem,
        "env_id": "cloudbase-test-1a2b3c",
    }))
    .unwrap()
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

fn pem_der(pem: &str) -> Vec<u8> {
    STANDARD.decode(&pem_bodies(pem)[0]).unwrap()
}

/// DER length octets.
fn der_len(len: usize) -> Vec<u8> {
    if len < 0x80 {
        return vec![len as u8];
    }
    let bytes: Vec<u8> = len
        .to_be_bytes()
        .into_iter()
        .skip_while(|&b| b == 0)
        .collect();
    let mut out = vec![0x80 | bytes.len() as u8];
    out.extend(bytes);
    out
}

fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend(der_len(content.len()));
    out.extend_from_slice(content);
    out
}

/// A DER INTEGER of the unsigned big-endian `value`.
fn der_uint(value: &[u8]) -> Vec<u8> {
    let value: Vec<u8> = value.iter().copied().skip_while(|&b| b == 0).collect();
    let mut content = Vec::new();
    if value.is_empty() || value[0] & 0x80 != 0 {
        content.push(0);
    }
    content.extend(value);
    der_tlv(0x02, &content)
}

fn der_seq(items: &[Vec<u8>]) -> Vec<u8> {
    der_tlv(0x30, &items.concat())
}

/// The nine integers of a PKCS#1 RSAPrivateKey, as unsigned big-endian bytes.
#[derive(Clone)]
struct RsaParts {
    version: Vec<u8>,
    n: Vec<u8>,
    e: Vec<u8>,
    d: Vec<u8>,
    p: Vec<u8>,
    q: Vec<u8>,
    dp: Vec<u8>,
    dq: Vec<u8>,
    qinv: Vec<u8>,
    other_primes: Option<Vec<u8>>,
}

impl RsaParts {
    fn from_pem(pem: &str) -> Self {
        let der = pem_der(pem);
        let key = pkcs1::RsaPrivateKeyRef::try_from(der.as_slice()).unwrap();
        let b = |u: pkcs1::UintRef<'_>| u.as_bytes().to_vec();
        Self {
            version: vec![0],
            n: b(key.modulus),
            e: b(key.public_exponent),
            d: b(key.private_exponent),
            p: b(key.prime1),
            q: b(key.prime2),
            dp: b(key.exponent1),
            dq: b(key.exponent2),
            qinv: b(key.coefficient),
            other_primes: None,
        }
    }

    fn der(&self) -> Vec<u8> {
        let mut items = vec![
            der_uint(&self.version),
            der_uint(&self.n),
            der_uint(&self.e),
            der_uint(&self.d),
            der_uint(&self.p),
            der_uint(&self.q),
            der_uint(&self.dp),
            der_uint(&self.dq),
            der_uint(&self.qinv),
        ];
        items.extend(self.other_primes.clone());
        der_seq(&items)
    }

    fn pkcs1_pem(&self) -> String {
        pem("RSA PRIVATE KEY", &self.der())
    }
}

/// PKCS#8 PrivateKeyInfo with rsaEncryption around `inner`.
fn pkcs8_rsa(inner: &[u8]) -> Vec<u8> {
    let rsa_encryption = der_tlv(
        0x06,
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01],
    );
    let null = vec![0x05, 0x00];
    der_seq(&[
        der_uint(&[0]),
        der_seq(&[rsa_encryption, null]),
        der_tlv(0x04, inner),
    ])
}

fn main_parts() -> RsaParts {
    RsaParts::from_pem(&main_pem())
}

fn modify(f: impl FnOnce(&mut RsaParts)) -> String {
    let mut parts = main_parts();
    f(&mut parts);
    parts.pkcs1_pem()
}

fn flip_last(bytes: &mut [u8]) {
    *bytes.last_mut().unwrap() ^= 0x02;
}

// ---------------------------------------------------------------------------------------------
// Cases

type Expect = Box<dyn Fn(&E) -> bool>;

enum Input {
    /// A credentials file with these bytes.
    File(Vec<u8>),
    /// A path as it is (a directory, a missing file).
    Path(PathBuf),
    /// These environment variables and no others.
    Env(Vec<(&'static str, OsString)>),
}

struct Case {
    name: String,
    input: Input,
    expect: Expect,
    /// Text whose 16-character pieces no output may contain (key bodies of the input).
    secrets: Vec<String>,
}

fn case(name: &str, input: Input, expect: impl Fn(&E) -> bool + 'static) -> Case {
    let secrets = match &input {
        Input::File(bytes) => secrets_of(&String::from_utf8_lossy(bytes)),
        Input::Path(_) => Vec::new(),
        Input::Env(vars) => vars
            .iter()
            .flat_map(|(_, v)| secrets_of(&v.to_string_lossy()))
            .collect(),
    };
    Case {
        name: name.to_string(),
        input,
        expect: Box::new(expect),
        secrets,
    }
}

/// The PEM bodies in `text`, which may be JSON with `\n` escapes.
fn secrets_of(text: &str) -> Vec<String> {
    let unescaped = text.replace("\\n", "\n");
    pem_bodies(&unescaped)
}

fn file_case(name: &str, pem: &str, expect: impl Fn(&E) -> bool + 'static) -> Case {
    case(name, Input::File(console_json(pem).into_bytes()), expect)
}

fn json_case(name: &str, json: &str, expect: impl Fn(&E) -> bool + 'static) -> Case {
    case(name, Input::File(json.as_bytes().to_vec()), expect)
}

fn env_case(
    name: &str,
    vars: &[(&'static str, OsString)],
    expect: impl Fn(&E) -> bool + 'static,
) -> Case {
    case(name, Input::Env(vars.to_vec()), expect)
}

fn inconsistent(e: &E) -> bool {
    matches!(e, E::InconsistentKey { .. })
}

fn malformed(e: &E) -> bool {
    matches!(e, E::MalformedKey { .. })
}

fn not_rsa(algorithm: &'static str) -> impl Fn(&E) -> bool {
    move |e| matches!(e, E::NotRsa { algorithm: a, .. } if a.starts_with(algorithm))
}

fn credential_cases(dir: &Path) -> Vec<Case> {
    let main = main_pem();
    let main_der = pem_der(&main);
    let other_1024 = RsaParts::from_pem(&fixture_pem("fixtures/keys/rsa1024-pkcs1.json"));
    let key_b64 = pem_bodies(&main)[0].clone();
    let mut cases = vec![
        // Keys made with openssl (tests/bad_inputs/keys/).
        file_case("512-bit PKCS#1", &bad_key("rsa512-pkcs1.pem"), |e| {
            matches!(
                e,
                E::KeyTooSmall {
                    bits: 512,
                    min: 1024,
                    ..
                }
            )
        }),
        file_case("512-bit PKCS#8", &bad_key("rsa512-pkcs8.pem"), |e| {
            matches!(e, E::KeyTooSmall { bits: 512, .. })
        }),
        file_case("768-bit PKCS#8", &bad_key("rsa768-pkcs8.pem"), |e| {
            matches!(e, E::KeyTooSmall { bits: 768, .. })
        }),
        file_case(
            "encrypted PKCS#8 (aes-256-cbc)",
            &bad_key("encrypted-pkcs8-aes256.pem"),
            |e| matches!(e, E::EncryptedKey { .. }),
        ),
        file_case(
            "PKCS#1 with Proc-Type: 4,ENCRYPTED",
            &bad_key("encrypted-pkcs1-proc-type.pem"),
            |e| matches!(e, E::EncryptedKey { .. }),
        ),
        file_case("EC key (SEC1)", &bad_key("ec-p256-sec1.pem"), not_rsa("EC")),
        file_case(
            "EC key (PKCS#8)",
            &bad_key("ec-p256-pkcs8.pem"),
            not_rsa("EC"),
        ),
        file_case("Ed25519 key", &bad_key("ed25519.pem"), not_rsa("Ed25519")),
        file_case("Ed448 key", &bad_key("ed448.pem"), not_rsa("Ed448")),
        file_case("X25519 key", &bad_key("x25519.pem"), not_rsa("X25519")),
        file_case(
            "RSA-PSS key",
            &bad_key("rsa-pss-1024.pem"),
            not_rsa("RSASSA-PSS"),
        ),
        file_case(
            "DSA key (PKCS#8)",
            &bad_key("dsa-pkcs8.pem"),
            not_rsa("DSA"),
        ),
        file_case(
            "DSA key (traditional)",
            &bad_key("dsa-traditional.pem"),
            not_rsa("DSA"),
        ),
        file_case("certificate", &bad_key("certificate.pem"), |e| {
            matches!(e, E::CertificateGiven { .. })
        }),
        file_case(
            "certificate request",
            &bad_key("certificate-request.pem"),
            |e| matches!(e, E::CertificateGiven { .. }),
        ),
        file_case(
            "public key (SubjectPublicKeyInfo)",
            &bad_key("public-key-spki.pem"),
            |e| matches!(e, E::PublicKeyGiven { .. }),
        ),
        file_case(
            "public key (PKCS#1)",
            &bad_key("public-key-pkcs1.pem"),
            |e| matches!(e, E::PublicKeyGiven { .. }),
        ),
        file_case(
            "OpenSSH key",
            &bad_key("openssh-ed25519.pem"),
            |e| matches!(e, E::UnsupportedPem { label, .. } if label == "OPENSSH PRIVATE KEY"),
        ),
        // Keys whose numbers disagree, built from the fixture key.
        file_case("dP wrong", &modify(|k| flip_last(&mut k.dp)), inconsistent),
        file_case("dQ wrong", &modify(|k| flip_last(&mut k.dq)), inconsistent),
        file_case(
            "qInv wrong",
            &modify(|k| flip_last(&mut k.qinv)),
            inconsistent,
        ),
        file_case(
            "n of another key (n != p*q)",
            &modify(|k| k.n = other_1024.n.clone()),
            inconsistent,
        ),
        file_case(
            "d + 2 (d*e != 1)",
            &modify(|k| flip_last(&mut k.d)),
            inconsistent,
        ),
        file_case("e = 3 (d*e != 1)", &modify(|k| k.e = vec![3]), inconsistent),
        file_case(
            "e even",
            &modify(|k| k.e = vec![0x01, 0x00, 0x02]),
            |e| matches!(e, E::InconsistentKey { reason, .. } if reason.contains("exponent")),
        ),
        file_case(
            "e = 1",
            &modify(|k| k.e = vec![1]),
            |e| matches!(e, E::InconsistentKey { reason, .. } if reason.contains("exponent")),
        ),
        file_case(
            "n even",
            &modify(|k| *k.n.last_mut().unwrap() &= 0xfe),
            |e| matches!(e, E::InconsistentKey { reason, .. } if reason.contains("even")),
        ),
        file_case(
            "d = 0",
            &modify(|k| k.d = vec![0]),
            |e| matches!(e, E::InconsistentKey { reason, .. } if reason.contains("zero")),
        ),
        file_case(
            "p and q swapped",
            &modify(|k| std::mem::swap(&mut k.p, &mut k.q)),
            inconsistent,
        ),
        file_case(
            "modulus cut to 1022 bits",
            &modify(|k| k.n[0] &= 0x3f),
            |e| matches!(e, E::KeyTooSmall { bits: 1022, .. }),
        ),
        file_case(
            "modulus claimed 16384 bits",
            &modify(|k| {
                k.n = vec![0x5a; 2048];
                k.n[0] = 0xc3;
            }),
            |e| {
                matches!(
                    e,
                    E::KeyTooLarge {
                        bits: 16384,
                        max: 8192,
                        ..
                    }
                )
            },
        ),
        file_case(
            "multi-prime (version 1, otherPrimeInfos)",
            &modify(|k| {
                k.version = vec![1];
                k.other_primes = Some(der_seq(&[der_seq(&[
                    der_uint(&[7]),
                    der_uint(&[5]),
                    der_uint(&[3]),
                ])]));
            }),
            malformed,
        ),
        // DER and PEM damage.
        file_case(
            "DER cut in half",
            &pem("RSA PRIVATE KEY", &main_der[..main_der.len() / 2]),
            malformed,
        ),
        file_case(
            "PKCS#1 body under a PRIVATE KEY label",
            &pem("PRIVATE KEY", &main_der),
            |e| matches!(e, E::MalformedKey { reason, .. } if reason.contains("PKCS#8")),
        ),
        file_case(
            "PKCS#8 body under an RSA PRIVATE KEY label",
            &pem("RSA PRIVATE KEY", &pkcs8_rsa(&main_der)),
            |e| matches!(e, E::MalformedKey { reason, .. } if reason.contains("PKCS#1")),
        ),
        file_case(
            "PKCS#8 rsaEncryption around garbage",
            &pem("PRIVATE KEY", &pkcs8_rsa(&main_der[..200])),
            malformed,
        ),
        file_case("empty PEM body", &pem("RSA PRIVATE KEY", &[]), malformed),
        file_case("base64 body without PEM lines", &key_b64, |e| {
            matches!(e, E::NoPemBlock { .. })
        }),
        file_case(
            "no END line",
            &main.replace("-----END RSA PRIVATE KEY-----", ""),
            |e| matches!(e, E::InvalidPem { .. }),
        ),
        file_case(
            "END line of another label",
            &main.replace("END RSA PRIVATE KEY", "END PRIVATE KEY"),
            |e| matches!(e, E::InvalidPem { .. }),
        ),
        file_case("body not base64", &main.replacen("MIIC", "MI!C", 1), |e| {
            matches!(e, E::InvalidPem { .. })
        }),
        file_case(
            "unknown PEM label",
            &main.replace("RSA PRIVATE KEY", "CLOUDBASE KEY"),
            |e| matches!(e, E::UnsupportedPem { label, .. } if label == "CLOUDBASE KEY"),
        ),
        file_case(
            "PEM label with a terminal escape",
            &main.replace("RSA PRIVATE KEY", "\u{1b}[2J\u{1b}]0;owned\u{7}"),
            |e| matches!(e, E::InvalidPem { .. }),
        ),
        file_case(
            "PEM label that runs into the key body",
            &{
                let label = format!("RSA PRIVATE KEY {}", &key_b64[..24]);
                main.replace("RSA PRIVATE KEY", &label)
            },
            |e| matches!(e, E::InvalidPem { .. }),
        ),
        file_case("not a key at all", "paste the key here", |e| {
            matches!(e, E::NoPemBlock { .. })
        }),
        // JSON damage.
        json_case("empty file", "", |e| matches!(e, E::InvalidJson { .. })),
        json_case("not JSON", "private_key_id=k1\nprivate_key=...", |e| {
            matches!(e, E::InvalidJson { .. })
        }),
        json_case(
            "JSON cut inside the key",
            &console_json(&main)[..400],
            |e| matches!(e, E::InvalidJson { .. }),
        ),
        json_case("JSON array", "[1, 2]", |e| {
            matches!(
                e,
                E::NotAnObject {
                    found: "an array",
                    ..
                }
            )
        }),
        json_case("JSON string", "\"tcb_custom_login\"", |e| {
            matches!(
                e,
                E::NotAnObject {
                    found: "a string",
                    ..
                }
            )
        }),
        json_case(
            "two objects",
            &format!("{}\n{{}}", console_json(&main)),
            |e| matches!(e, E::TrailingCharacters { column: 1, .. }),
        ),
        json_case(
            "private_key is a number",
            r#"{"private_key_id": "k1", "private_key": 1024}"#,
            |e| {
                matches!(
                    e,
                    E::FieldNotString {
                        field: "private_key",
                        found: "a number",
                        ..
                    }
                )
            },
        ),
        json_case(
            "private_key_id is an object",
            &format!(
                r#"{{"private_key_id": {{"id": 1}}, "private_key": {}}}"#,
                serde_json::to_string(&main).unwrap()
            ),
            |e| {
                matches!(
                    e,
                    E::FieldNotString {
                        field: "private_key_id",
                        found: "an object",
                        ..
                    }
                )
            },
        ),
        json_case(
            "env_id is an array",
            &format!(
                r#"{{"private_key_id": "k1", "private_key": {}, "env_id": ["a"]}}"#,
                serde_json::to_string(&main).unwrap()
            ),
            |e| {
                matches!(
                    e,
                    E::FieldNotString {
                        field: "env_id",
                        found: "an array",
                        ..
                    }
                )
            },
        ),
        json_case(
            "private_key missing",
            r#"{"private_key_id": "k1", "env_id": "e"}"#,
            |e| {
                matches!(
                    e,
                    E::MissingField {
                        field: "private_key",
                        ..
                    }
                )
            },
        ),
        json_case(
            "private_key_id missing",
            &format!(
                r#"{{"private_key": {}}}"#,
                serde_json::to_string(&main).unwrap()
            ),
            |e| {
                matches!(
                    e,
                    E::MissingField {
                        field: "private_key_id",
                        ..
                    }
                )
            },
        ),
        json_case(
            "private_key null",
            r#"{"private_key_id": "k1", "private_key": null}"#,
            |e| {
                matches!(
                    e,
                    E::MissingField {
                        field: "private_key",
                        ..
                    }
                )
            },
        ),
        json_case(
            "private_key blank",
            r#"{"private_key_id": "k1", "private_key": "  \n "}"#,
            |e| {
                matches!(
                    e,
                    E::EmptyField {
                        field: "private_key",
                        ..
                    }
                )
            },
        ),
        json_case(
            "private_key_id empty",
            &format!(
                r#"{{"private_key_id": "", "private_key": {}}}"#,
                serde_json::to_string(&main).unwrap()
            ),
            |e| {
                matches!(
                    e,
                    E::EmptyField {
                        field: "private_key_id",
                        ..
                    }
                )
            },
        ),
        case(
            "Latin-1 byte in the file",
            Input::File({
                let mut bytes = console_json(&main).into_bytes();
                let at = bytes.iter().position(|&b| b == b'c').unwrap();
                bytes[at] = 0xe9;
                bytes
            }),
            |e| matches!(e, E::NotUtf8 { .. }),
        ),
        case(
            "file over 64 KiB",
            Input::File({
                let mut text = console_json(&main);
                text.push_str(&" ".repeat(MAX_CREDENTIALS_LEN));
                text.into_bytes()
            }),
            |e| matches!(e, E::TooLarge { .. }),
        ),
        // Paths.
        case("a directory", Input::Path(dir.to_path_buf()), |e| {
            matches!(e, E::IsDirectory { .. })
        }),
        case(
            "no such file",
            Input::Path(dir.join("no-such-file.json")),
            |e| matches!(e, E::FileNotFound { .. }),
        ),
    ];

    // The environment.
    let os = |s: &str| OsString::from(s);
    let escaped_key = |pem: &str| OsString::from(pem.trim_end().replace('\n', "\\n"));
    let base64_json = |json: &str| OsString::from(STANDARD.encode(json));
    cases.extend([
        env_case("nothing set", &[], |e| matches!(e, E::NotInEnvironment)),
        env_case(
            "credentials neither JSON nor base64",
            &[(CREDENTIALS_ENV, os("private_key=... (see console)"))],
            |e| matches!(e, E::NotJsonOrBase64 { .. }),
        ),
        env_case(
            "credentials: base64 of bytes that are not UTF-8",
            &[(
                CREDENTIALS_ENV,
                os(&STANDARD.encode([0xff, 0xfe, 0x7b, 0x7d])),
            )],
            |e| matches!(e, E::NotJsonOrBase64 { .. }),
        ),
        env_case(
            "credentials: base64 of the PEM instead of the JSON",
            &[(CREDENTIALS_ENV, base64_json(&main))],
            |e| matches!(e, E::InvalidJson { .. }),
        ),
        env_case(
            "credentials: base64 JSON with an encrypted key",
            &[(
                CREDENTIALS_ENV,
                base64_json(&console_json(&bad_key("encrypted-pkcs8-aes256.pem"))),
            )],
            |e| matches!(e, E::EncryptedKey { .. }),
        ),
        env_case(
            "credentials: JSON with a 512-bit key",
            &[(
                CREDENTIALS_ENV,
                os(&console_json(&bad_key("rsa512-pkcs1.pem"))),
            )],
            |e| matches!(e, E::KeyTooSmall { bits: 512, .. }),
        ),
        env_case(
            "credentials: JSON with trailing text",
            &[(
                CREDENTIALS_ENV,
                os(&format!("{} export", console_json(&main))),
            )],
            |e| matches!(e, E::TrailingCharacters { .. }),
        ),
        env_case(
            "credentials over 64 KiB",
            &[(CREDENTIALS_ENV, os(&"A".repeat(MAX_CREDENTIALS_LEN + 1)))],
            |e| matches!(e, E::TooLarge { .. }),
        ),
        env_case(
            "credentials not UTF-8",
            &[(CREDENTIALS_ENV, os_string(b"{\"private_key\": \"\xff\"}"))],
            |e| matches!(e, E::NotUtf8 { .. }),
        ),
        env_case(
            "key set, key id missing",
            &[(PRIVATE_KEY_ENV, escaped_key(&main))],
            |e| {
                matches!(
                    e,
                    E::MissingField {
                        origin: CredentialsSource::Env(PRIVATE_KEY_ID_ENV),
                        field: "private_key_id",
                    }
                )
            },
        ),
        env_case(
            "key id set, key blank",
            &[(PRIVATE_KEY_ID_ENV, os("k1")), (PRIVATE_KEY_ENV, os("   "))],
            |e| {
                matches!(
                    e,
                    E::EmptyField {
                        origin: CredentialsSource::Env(PRIVATE_KEY_ENV),
                        field: "private_key",
                    }
                )
            },
        ),
        env_case(
            "key: a public key with \\n escapes",
            &[
                (PRIVATE_KEY_ID_ENV, os("k1")),
                (
                    PRIVATE_KEY_ENV,
                    escaped_key(&bad_key("public-key-spki.pem")),
                ),
                (ENV_ID_ENV, os("env-1")),
            ],
            |e| matches!(e, E::PublicKeyGiven { .. }),
        ),
        env_case(
            "key: CRT values wrong, \\n escapes",
            &[
                (PRIVATE_KEY_ID_ENV, os("k1")),
                (
                    PRIVATE_KEY_ENV,
                    escaped_key(&modify(|k| flip_last(&mut k.dq))),
                ),
            ],
            inconsistent,
        ),
        env_case(
            "key not UTF-8",
            &[
                (PRIVATE_KEY_ID_ENV, os("k1")),
                (PRIVATE_KEY_ENV, os_string(b"-----BEGIN \xc0 KEY-----")),
            ],
            |e| matches!(e, E::NotUtf8 { .. }),
        ),
    ]);
    cases
}

// ---------------------------------------------------------------------------------------------
// Running cases

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "cloudbase-ticket-bad-inputs-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write_private(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

/// Where each case's input is on disk (file cases) and the loader's result.
fn load(case: &Case, dir: &Path, index: usize) -> (Option<PathBuf>, Result<Credentials, E>) {
    match &case.input {
        Input::File(bytes) => {
            let path = dir.join(format!("case-{index:02}.json"));
            write_private(&path, bytes);
            let result = Credentials::from_file(&path);
            (Some(path), result)
        }
        Input::Path(path) => (Some(path.clone()), Credentials::from_file(path)),
        Input::Env(vars) => {
            let result = Credentials::from_env_with(|name| {
                vars.iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.clone())
            });
            (None, result)
        }
    }
}

/// Panics if `output` holds a fixture key fragment or a fragment of the case's own keys.
fn assert_no_secret(case: &Case, what: &str, output: &str) {
    assert_no_key_material(&format!("{}: {what}", case.name), output);
    let mut windows = HashSet::new();
    for secret in &case.secrets {
        add_windows(&mut windows, secret);
    }
    if let Some(fragment) = find_window(&windows, output) {
        panic!(
            "{}: {what} repeats key material {fragment:?}: {output}",
            case.name
        );
    }
}

#[test]
fn every_bad_credential_is_refused_with_its_specific_error() {
    let dir = scratch("load");
    let cases = credential_cases(&dir);
    assert!(cases.len() >= 30, "only {} cases", cases.len());
    let backend = Backend::default();
    for (index, case) in cases.iter().enumerate() {
        let (path, result) = load(case, &dir, index);
        let error = match result {
            Ok(creds) => panic!("{} ({backend}): loaded as {creds:?}", case.name),
            Err(e) => e,
        };
        assert!(
            (case.expect)(&error),
            "{} ({backend}): unexpected error {error:?}",
            case.name
        );
        let display = error.to_string();
        assert_one_short_line(&case.name, &display);
        assert_no_secret(case, "Display", &display);
        assert_no_secret(case, "Debug", &format!("{error:?}"));
        // Every message names where the input came from.
        match (&case.input, error.origin()) {
            (Input::Env(vars), _) if vars.is_empty() => {
                assert!(matches!(error, E::NotInEnvironment))
            }
            (Input::Env(_), Some(CredentialsSource::Env(name))) => {
                assert!(display.contains(name), "{}: {display}", case.name)
            }
            (Input::File(_) | Input::Path(_), Some(CredentialsSource::File(p))) => {
                assert_eq!(Some(&p), path.as_ref(), "{}", case.name);
                assert!(display.contains(&p.display().to_string()), "{display}");
            }
            (_, origin) => panic!("{}: origin {origin:?} for {display}", case.name),
        }
        // The same text through `from_json` fails the same way.
        if let Input::File(bytes) = &case.input
            && let Ok(text) = std::str::from_utf8(bytes)
        {
            let e = Credentials::from_json(text).expect_err(&case.name);
            assert!((case.expect)(&e), "{}: from_json gives {e:?}", case.name);
            assert_eq!(e.origin(), Some(CredentialsSource::Json));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Mangled but valid: the loader's leniency, on every backend (a positive control for the
/// refusals above).
#[test]
fn mangled_but_valid_keys_load_and_sign_alike_on_every_backend() {
    let main = main_pem();
    let parts = main_parts();
    let variants = [
        ("as is", main.clone()),
        ("CRLF", main.replace('\n', "\r\n")),
        ("BOM", format!("\u{feff}{main}")),
        ("literal \\n escapes", main.replace('\n', "\\n")),
        ("one line with spaces", main.replace('\n', " ")),
        ("PKCS#8", pem("PRIVATE KEY", &pkcs8_rsa(&parts.der()))),
        ("re-encoded PKCS#1", parts.pkcs1_pem()),
        (
            "unwrapped body",
            main.replace('\n', "")
                .replace("-----MII", "-----\nMII")
                .replace("-----END", "\n-----END"),
        ),
    ];
    let reference = Issuer::builder(Credentials::from_json(&console_json(&main)).unwrap())
        .fixed_now_ms(fuzz_checks::SEED_NOW_MS)
        .build()
        .unwrap()
        .create_ticket("user_0001")
        .unwrap();
    for (name, pem) in variants {
        let creds =
            Credentials::from_json(&console_json(&pem)).unwrap_or_else(|e| panic!("{name}: {e}"));
        for &backend in Backend::all() {
            let ticket = Issuer::builder(creds.clone())
                .backend(backend)
                .fixed_now_ms(fuzz_checks::SEED_NOW_MS)
                .build()
                .unwrap_or_else(|e| panic!("{name} on {backend}: {e}"))
                .create_ticket("user_0001")
                .unwrap();
            assert_eq!(ticket, reference, "{name} on {backend}");
        }
    }
}

#[cfg(feature = "cli")]
fn run_cli(case: &Case, path: Option<&Path>, uid: &str) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_cloudbase-ticket"));
    cmd.env_clear().arg("issue").arg("--uid").arg(uid);
    match &case.input {
        Input::Env(vars) => {
            for (name, value) in vars {
                cmd.env(name, value);
            }
        }
        _ => {
            cmd.arg("--credentials").arg(path.unwrap());
        }
    }
    cmd.output().unwrap()
}

/// Panics unless the CLI refused with exit code 2, nothing on stdout, and exactly the error's
/// message as one line on stderr.
#[cfg(feature = "cli")]
fn assert_cli_refused(name: &str, out: &std::process::Output, message: &str) {
    let stderr = String::from_utf8(out.stderr.clone()).unwrap();
    assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
    assert!(out.stdout.is_empty(), "{name}: stdout {:?}", out.stdout);
    assert_eq!(stderr, format!("cloudbase-ticket: {message}\n"), "{name}");
    assert_one_short_line(name, stderr.trim_end());
}

#[cfg(feature = "cli")]
#[test]
fn the_cli_refuses_every_bad_credential_with_exit_code_2_and_one_line() {
    let dir = scratch("cli");
    for (index, case) in credential_cases(&dir).iter().enumerate() {
        let (path, result) = load(case, &dir, index);
        let message = result.expect_err(&case.name).to_string();
        let out = run_cli(case, path.as_deref(), "user_0001");
        assert_cli_refused(&case.name, &out, &message);
        assert_no_secret(case, "CLI stderr", &String::from_utf8_lossy(&out.stderr));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------------
// Uids

/// What a uid case expects of the error.
type UidExpect = Box<dyn Fn(&UidError) -> bool>;

fn uid_cases() -> Vec<(&'static str, String, UidExpect)> {
    fn bad_char(ch: char, position: usize) -> UidExpect {
        Box::new(move |e| {
            matches!(e, UidError::InvalidCharacter { ch: c, position: p, .. }
                if *c == ch && *p == position)
        })
    }
    vec![
        (
            "empty",
            String::new(),
            Box::new(|e| matches!(e, UidError::TooShort { len: 0, .. })),
        ),
        (
            "three characters",
            "abc".into(),
            Box::new(|e| matches!(e, UidError::TooShort { len: 3, .. })),
        ),
        (
            "33 characters",
            "a".repeat(33),
            Box::new(|e| matches!(e, UidError::TooLong { len: 33, .. })),
        ),
        (
            "10,000 characters",
            "u".repeat(10_000),
            Box::new(|e| matches!(e, UidError::TooLong { len: 10_000, .. })),
        ),
        ("space", "user 0001".into(), bad_char(' ', 5)),
        ("trailing newline", "user_0001\n".into(), bad_char('\n', 10)),
        ("trailing CRLF", "user_0001\r\n".into(), bad_char('\r', 10)),
        ("leading tab", "\tuser_0001".into(), bad_char('\t', 1)),
        ("Chinese", "用户0001".into(), bad_char('用', 1)),
        (
            "full-width letters",
            "ｕｓｅｒ0001".into(),
            bad_char('ｕ', 1),
        ),
        ("two emoji", "👍👍".into(), bad_char('👍', 1)),
        (
            "combining accent",
            "e\u{301}xyz".into(),
            bad_char('\u{301}', 2),
        ),
        (
            "zero-width space",
            "user\u{200b}01".into(),
            bad_char('\u{200b}', 5),
        ),
        ("slash", "user/0001".into(), bad_char('/', 5)),
        ("backslash", "user\\0001".into(), bad_char('\\', 5)),
        ("double quote", "user\"0001".into(), bad_char('"', 5)),
        ("single quote", "o'brien".into(), bad_char('\'', 2)),
        ("pipe", "user|0001".into(), bad_char('|', 5)),
        ("dollar", "$user0001".into(), bad_char('$', 1)),
        ("percent escape", "user%200001".into(), bad_char('%', 5)),
        (
            "terminal escape",
            "ab\u{1b}[31mcd".into(),
            bad_char('\u{1b}', 3),
        ),
        ("NUL", "ab\0cd".into(), bad_char('\0', 3)),
    ]
}

#[test]
fn every_bad_uid_is_refused_with_its_specific_error() {
    let cases = uid_cases();
    assert!(cases.len() >= 10);
    let issuer = Issuer::builder(common::main_credentials())
        .fixed_now_ms(fuzz_checks::SEED_NOW_MS)
        .build()
        .unwrap();
    for (name, uid, expect) in &cases {
        let error = check_uid(uid).expect_err(name);
        assert!(expect(&error), "{name}: {error:?}");
        assert_one_short_line(name, &error.to_string());
        // The differential oracle agrees, and so does the issuer.
        fuzz_checks::check_one_uid(uid);
        match issuer.create_ticket(uid) {
            Err(TicketError::InvalidUid(e)) => assert_eq!(e, error, "{name}"),
            other => panic!("{name}: issuer gives {other:?}"),
        }
    }
}

#[cfg(feature = "cli")]
#[test]
fn the_cli_refuses_every_bad_uid_with_exit_code_2_and_one_line() {
    // A private copy of the fixture, so that no permission warning joins the error line.
    let dir = scratch("cli-uid");
    let path = dir.join("tcb_custom_login.json");
    write_private(
        &path,
        &std::fs::read(common::fixture("fixtures/tcb_custom_login.json")).unwrap(),
    );
    for (name, uid, _) in uid_cases() {
        if uid.contains('\0') {
            continue; // a NUL cannot be passed in argv
        }
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_cloudbase-ticket"))
            .env_clear()
            .args(["issue", "--credentials"])
            .arg(&path)
            .arg("--uid")
            .arg(&uid)
            .output()
            .unwrap();
        let message = check_uid(&uid).unwrap_err().to_string();
        assert_cli_refused(name, &out, &message);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The 16-character window is what the checks above look for; a window this long in the
/// output cannot be a coincidence of the base64 alphabet.
#[test]
fn the_key_material_check_finds_a_fragment() {
    let body = pem_bodies(&main_pem()).remove(0);
    let mut windows = HashSet::new();
    add_windows(&mut windows, &body);
    let leaky = format!("error near {}", &body[300..300 + WINDOW]);
    assert!(find_window(&windows, &leaky).is_some());
    assert!(find_window(&windows, &format!("error near {}", &body[300..314])).is_none());
    let result = std::panic::catch_unwind(|| assert_no_key_material("test", &leaky));
    assert!(result.is_err(), "a key fragment must be caught");
}
