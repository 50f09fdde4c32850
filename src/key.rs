//! Decoding RSA keys from PEM text, independent of the signing backend.
//!
//! The console hands out PKCS#1 (`-----BEGIN RSA PRIVATE KEY-----`); users convert to PKCS#8,
//! paste keys into environment variables with literal `\n` escapes, save them with CRLF line
//! ends or a byte-order mark. This module accepts all of that, classifies everything else
//! (encrypted keys, public keys, certificates, other algorithms) into a [`KeyProblem`], and
//! returns the PKCS#1 `RSAPrivateKey` DER in a buffer that is wiped on drop.
//!
//! The PEM decoder is a small lax one written here rather than taken from a crate, because every
//! intermediate buffer that holds key text or key bytes must be zeroized, and the PEM crates
//! either drop unzeroized copies or reject the line layouts real users have.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use pkcs1::der::Decode as _;
use zeroize::Zeroizing;

/// Smallest RSA modulus accepted: what the CloudBase console issues.
pub(crate) const MIN_KEY_BITS: usize = 1024;
/// Largest RSA modulus accepted.
pub(crate) const MAX_KEY_BITS: usize = 8192;

/// Base64 as found in PEM bodies: standard alphabet, padding optional.
const PEM_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

const OID_RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";

/// Why a key was refused. Never carries key material: only labels, names and sizes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyProblem {
    /// No `-----BEGIN …-----` line at all.
    NoPemBlock,
    /// A BEGIN line without its END line, or an END for another label.
    Unterminated,
    /// The "label" of the BEGIN line is not one: key text or control characters that ran into
    /// it. Never quoted back, as it may be key material.
    BadLabel,
    /// The body between the markers is not base64.
    BadBase64,
    /// `ENCRYPTED PRIVATE KEY` or a PKCS#1 key with `Proc-Type: 4,ENCRYPTED`.
    Encrypted,
    /// A public key where a private key was expected.
    PublicKey,
    /// An X.509 certificate (or request) where a key was expected.
    Certificate,
    /// A private key, but not RSA; holds the algorithm's name.
    NotRsa(String),
    /// A PEM label this crate does not know; holds the (truncated) label.
    UnsupportedLabel(String),
    /// The DER inside is not the structure its label promises.
    Malformed(&'static str),
    /// The modulus is smaller than the minimum.
    TooSmall(usize),
    /// The modulus is larger than [`MAX_KEY_BITS`].
    TooLarge(usize),
    /// The key's parts do not agree (n ≠ p·q, d·e ≢ 1, wrong CRT values, bad exponent).
    Inconsistent(&'static str),
    /// A private key where a public key was expected.
    PrivateKey,
}

/// A PKCS#1 `RSAPrivateKey`, structurally checked, wiped on drop.
pub(crate) struct Pkcs1PrivateKey {
    der: Zeroizing<Vec<u8>>,
    bits: usize,
}

impl Pkcs1PrivateKey {
    /// Check PKCS#1 `RSAPrivateKey` DER (structure, size, exponent) and take ownership of it.
    pub(crate) fn from_der(der: Zeroizing<Vec<u8>>) -> Result<Self, KeyProblem> {
        let bits = check_rsa_private_key_structure(&der)?;
        Ok(Self { der, bits })
    }

    pub(crate) fn der(&self) -> &[u8] {
        &self.der
    }

    pub(crate) fn bits(&self) -> usize {
        self.bits
    }

    /// The public half, `(n, e)`, as unsigned big-endian integers without leading zeros.
    pub(crate) fn public_parts(&self) -> RsaPublicParts {
        // Structure was checked in `decode_private_key_pem`, so this decode cannot fail.
        let key = pkcs1::RsaPrivateKeyRef::from_der(&self.der)
            .expect("RSAPrivateKey DER was validated when it was loaded");
        RsaPublicParts {
            n: key.modulus.as_bytes().to_vec(),
            e: key.public_exponent.as_bytes().to_vec(),
        }
    }
}

/// An RSA public key as its two integers (unsigned big-endian, no leading zeros).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct RsaPublicParts {
    pub(crate) n: Vec<u8>,
    pub(crate) e: Vec<u8>,
}

impl RsaPublicParts {
    pub(crate) fn bits(&self) -> usize {
        bit_length(&self.n)
    }
}

/// Bit length of an unsigned big-endian integer.
fn bit_length(bytes: &[u8]) -> usize {
    let bytes = strip_leading_zeros(bytes);
    match bytes.first() {
        None => 0,
        Some(&first) => bytes.len() * 8 - first.leading_zeros() as usize,
    }
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

/// Undo the ways key text gets mangled in transit: a BOM, surrounding whitespace, literal
/// `\n` escapes instead of newlines, CRLF or CR line ends.
fn normalize_pem_text(text: &str) -> Zeroizing<String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text).trim();
    let mut out = Zeroizing::new(String::with_capacity(text.len()));
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if matches!(chars.peek(), Some('n')) => {
                chars.next();
                out.push('\n');
            }
            '\\' if matches!(chars.peek(), Some('r')) => {
                chars.next();
            }
            '\r' => {
                if chars.peek() != Some(&'\n') {
                    out.push('\n');
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// One PEM block: its label and its decoded body.
struct PemBlock {
    label: String,
    encrypted_header: bool,
    body: Zeroizing<Vec<u8>>,
}

fn decode_pem(text: &str) -> Result<PemBlock, KeyProblem> {
    let text = normalize_pem_text(text);
    let begin = text.find("-----BEGIN ").ok_or(KeyProblem::NoPemBlock)?;
    let after_begin = &text[begin + "-----BEGIN ".len()..];
    let label_end = after_begin.find("-----").ok_or(KeyProblem::Unterminated)?;
    let label = &after_begin[..label_end];
    if label.contains('\n') {
        return Err(KeyProblem::Unterminated);
    }
    let rest = &after_begin[label_end + "-----".len()..];
    let end_marker = format!("-----END {label}-----");
    let body_end = rest.find(&end_marker).ok_or(KeyProblem::Unterminated)?;
    let body_text = &rest[..body_end];

    let mut encrypted_header = false;
    let mut base64_text = Zeroizing::new(String::with_capacity(body_text.len()));
    for line in body_text.lines() {
        if let Some((name, value)) = line.split_once(':') {
            // RFC 1421 headers, e.g. `Proc-Type: 4,ENCRYPTED` and `DEK-Info: …`.
            if name.trim().eq_ignore_ascii_case("Proc-Type") && value.contains("ENCRYPTED") {
                encrypted_header = true;
            }
            continue;
        }
        base64_text.extend(line.chars().filter(|c| !c.is_ascii_whitespace()));
    }
    let mut body = Zeroizing::new(Vec::with_capacity(base64_text.len() / 4 * 3 + 3));
    PEM_BASE64
        .decode_vec(base64_text.as_bytes(), &mut body)
        .map_err(|_| KeyProblem::BadBase64)?;
    Ok(PemBlock {
        label: label.trim().to_string(),
        encrypted_header,
        body,
    })
}

/// Classify labels that are never what either decoder wants.
fn classify_foreign_label(label: &str) -> KeyProblem {
    match label {
        "ENCRYPTED PRIVATE KEY" => KeyProblem::Encrypted,
        "PUBLIC KEY" | "RSA PUBLIC KEY" => KeyProblem::PublicKey,
        "CERTIFICATE"
        | "X509 CERTIFICATE"
        | "TRUSTED CERTIFICATE"
        | "CERTIFICATE REQUEST"
        | "NEW CERTIFICATE REQUEST"
        | "X509 CRL" => KeyProblem::Certificate,
        "EC PRIVATE KEY" => KeyProblem::NotRsa("EC".into()),
        "DSA PRIVATE KEY" => KeyProblem::NotRsa("DSA".into()),
        "OPENSSH PRIVATE KEY" => KeyProblem::UnsupportedLabel("OPENSSH PRIVATE KEY".into()),
        "RSA PRIVATE KEY" | "PRIVATE KEY" => KeyProblem::PrivateKey,
        other if is_plausible_label(other) => {
            KeyProblem::UnsupportedLabel(other.chars().take(40).collect())
        }
        _ => KeyProblem::BadLabel,
    }
}

/// Whether `label` reads like a PEM label ("X9.42 DH PARAMETERS", "SSH2 ENCRYPTED PRIVATE
/// KEY"): words of 1 to 15 ASCII letters, digits, `.`, `-` or `_`, one space apart. Only such a
/// label is quoted in messages. Anything else is text that ran into the BEGIN line, such as a
/// key body whose closing dashes were lost, or control characters; and as no word reaches 16
/// characters, a quoted label cannot carry a 16-character piece of a base64 key body.
fn is_plausible_label(label: &str) -> bool {
    label.split(' ').all(|word| {
        (1..16).contains(&word.len())
            && word
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    })
}

/// A readable name for the algorithm OIDs people actually put into PKCS#8 files.
fn algorithm_name(oid: &str) -> String {
    match oid {
        "1.2.840.10045.2.1" => "EC".into(),
        "1.3.101.112" => "Ed25519".into(),
        "1.3.101.113" => "Ed448".into(),
        "1.3.101.110" => "X25519".into(),
        "1.3.101.111" => "X448".into(),
        "1.2.840.10040.4.1" => "DSA".into(),
        "1.2.840.113549.1.1.10" => "RSASSA-PSS (RS256 needs an rsaEncryption key)".into(),
        "1.2.840.113549.1.3.1" => "DH".into(),
        other => format!("OID {other}"),
    }
}

/// Decode a private key in PKCS#1 or PKCS#8 PEM into checked PKCS#1 DER.
///
/// Checks structure, size (`MIN_KEY_BITS..=MAX_KEY_BITS`) and the public exponent; the
/// arithmetic consistency of the parts is checked by the signing backend when it loads the key.
pub(crate) fn decode_private_key_pem(text: &str) -> Result<Pkcs1PrivateKey, KeyProblem> {
    let block = decode_pem(text)?;
    let der = match block.label.as_str() {
        "RSA PRIVATE KEY" => {
            if block.encrypted_header {
                return Err(KeyProblem::Encrypted);
            }
            block.body
        }
        "PRIVATE KEY" => {
            let info = pkcs8::PrivateKeyInfoRef::from_der(&block.body)
                .map_err(|_| KeyProblem::Malformed("not a PKCS#8 PrivateKeyInfo structure"))?;
            let oid = info.algorithm.oid.to_string();
            if oid != OID_RSA_ENCRYPTION {
                return Err(KeyProblem::NotRsa(algorithm_name(&oid)));
            }
            Zeroizing::new(info.private_key.as_bytes().to_vec())
        }
        other => return Err(classify_foreign_label(other)),
    };
    Pkcs1PrivateKey::from_der(der)
}

/// Structural checks on PKCS#1 `RSAPrivateKey` DER; returns the modulus size in bits.
fn check_rsa_private_key_structure(der: &[u8]) -> Result<usize, KeyProblem> {
    let key = pkcs1::RsaPrivateKeyRef::from_der(der)
        .map_err(|_| KeyProblem::Malformed("not a PKCS#1 RSAPrivateKey structure"))?;
    if key.other_prime_infos.is_some() {
        return Err(KeyProblem::Malformed(
            "multi-prime RSA keys are not supported",
        ));
    }
    let parts = RsaPublicParts {
        n: key.modulus.as_bytes().to_vec(),
        e: key.public_exponent.as_bytes().to_vec(),
    };
    check_public_parts(&parts)?;
    for (name, value) in [
        (
            "private exponent d is zero",
            key.private_exponent.as_bytes(),
        ),
        ("prime p is zero", key.prime1.as_bytes()),
        ("prime q is zero", key.prime2.as_bytes()),
    ] {
        if strip_leading_zeros(value).is_empty() {
            return Err(KeyProblem::Inconsistent(name));
        }
    }
    Ok(parts.bits())
}

/// Size and exponent rules shared by private and public keys.
fn check_public_parts(parts: &RsaPublicParts) -> Result<(), KeyProblem> {
    let bits = parts.bits();
    if bits < MIN_KEY_BITS {
        return Err(KeyProblem::TooSmall(bits));
    }
    if bits > MAX_KEY_BITS {
        return Err(KeyProblem::TooLarge(bits));
    }
    if parts.n.last().is_none_or(|b| b & 1 == 0) {
        return Err(KeyProblem::Inconsistent("modulus n is even"));
    }
    // e must be odd, at least 3 and at most 33 bits (the bound AWS-LC and RustCrypto share).
    let e_bits = bit_length(&parts.e);
    if !(2..=33).contains(&e_bits) || parts.e.last().is_none_or(|b| b & 1 == 0) {
        return Err(KeyProblem::Inconsistent(
            "public exponent e must be odd, at least 3 and at most 2^33",
        ));
    }
    Ok(())
}

/// Decode an RSA public key from PEM: SubjectPublicKeyInfo (`PUBLIC KEY`) or PKCS#1
/// (`RSA PUBLIC KEY`).
pub(crate) fn decode_public_key_pem(text: &str) -> Result<RsaPublicParts, KeyProblem> {
    let block = decode_pem(text)?;
    let pkcs1_der: Vec<u8> = match block.label.as_str() {
        "RSA PUBLIC KEY" => block.body.to_vec(),
        "PUBLIC KEY" => {
            let spki = spki::SubjectPublicKeyInfoRef::from_der(&block.body)
                .map_err(|_| KeyProblem::Malformed("not a SubjectPublicKeyInfo structure"))?;
            let oid = spki.algorithm.oid.to_string();
            if oid != OID_RSA_ENCRYPTION {
                return Err(KeyProblem::NotRsa(algorithm_name(&oid)));
            }
            spki.subject_public_key
                .as_bytes()
                .ok_or(KeyProblem::Malformed(
                    "public key bit string has unused bits",
                ))?
                .to_vec()
        }
        "RSA PRIVATE KEY" | "PRIVATE KEY" => return Err(KeyProblem::PrivateKey),
        other => return Err(classify_foreign_label(other)),
    };
    let key = pkcs1::RsaPublicKeyRef::from_der(&pkcs1_der)
        .map_err(|_| KeyProblem::Malformed("not a PKCS#1 RSAPublicKey structure"))?;
    let parts = RsaPublicParts {
        n: key.modulus.as_bytes().to_vec(),
        e: key.public_exponent.as_bytes().to_vec(),
    };
    check_public_parts(&parts)?;
    Ok(parts)
}

/// PEM text of a SubjectPublicKeyInfo for `(n, e)`, 64-column lines, `\n` line ends.
pub(crate) fn encode_public_key_pem(parts: &RsaPublicParts) -> String {
    use pkcs1::der::Encode as _;
    let pkcs1_der = pkcs1::RsaPublicKeyRef {
        modulus: pkcs1::UintRef::new(&parts.n).expect("modulus fits a DER integer"),
        public_exponent: pkcs1::UintRef::new(&parts.e).expect("exponent fits a DER integer"),
    }
    .to_der()
    .expect("RSAPublicKey encodes");
    let spki = spki::SubjectPublicKeyInfoRef {
        algorithm: spki::AlgorithmIdentifierRef {
            oid: spki::ObjectIdentifier::new_unwrap(OID_RSA_ENCRYPTION),
            parameters: Some(pkcs1::der::asn1::AnyRef::NULL),
        },
        subject_public_key: pkcs1::der::asn1::BitStringRef::from_bytes(&pkcs1_der)
            .expect("bit string of whole bytes"),
    };
    let der = spki.to_der().expect("SubjectPublicKeyInfo encodes");
    pem_wrap("PUBLIC KEY", &der)
}

/// Wrap DER into PEM with 64-column lines.
pub(crate) fn pem_wrap(label: &str, der: &[u8]) -> String {
    let b64 = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(der));
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 2 * label.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_handles_escapes_crlf_bom() {
        assert_eq!(
            &*normalize_pem_text("\u{feff}  a\\nb\\r\\nc\r\nd\re \n"),
            "a\nb\nc\nd\ne"
        );
    }

    #[test]
    fn bit_length_ignores_leading_zeros() {
        assert_eq!(bit_length(&[0, 0, 0x80, 0]), 16);
        assert_eq!(bit_length(&[0x01]), 1);
        assert_eq!(bit_length(&[]), 0);
        assert_eq!(bit_length(&[0, 0]), 0);
    }

    #[test]
    fn foreign_labels_are_classified() {
        for (pem, problem) in [
            (
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
                KeyProblem::Certificate,
            ),
            (
                "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----",
                KeyProblem::PublicKey,
            ),
            (
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----",
                KeyProblem::Encrypted,
            ),
            (
                "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----",
                KeyProblem::NotRsa("EC".into()),
            ),
            ("no pem here", KeyProblem::NoPemBlock),
            (
                "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n",
                KeyProblem::Unterminated,
            ),
            (
                "-----BEGIN RSA PRIVATE KEY-----\n!!!!\n-----END RSA PRIVATE KEY-----",
                KeyProblem::BadBase64,
            ),
            (
                "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----",
                KeyProblem::Encrypted,
            ),
            (
                "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----",
                KeyProblem::Malformed("not a PKCS#1 RSAPrivateKey structure"),
            ),
            (
                "-----BEGIN X9.42 DH PARAMETERS-----\nAAAA\n-----END X9.42 DH PARAMETERS-----",
                KeyProblem::UnsupportedLabel("X9.42 DH PARAMETERS".into()),
            ),
            // Never quoted back: control characters, and key text in the label (found while
            // writing tests/bad_inputs.rs; both were echoed in UnsupportedPem messages).
            (
                "-----BEGIN \u{1b}[2J-----\nAAAA\n-----END \u{1b}[2J-----",
                KeyProblem::BadLabel,
            ),
            (
                "-----BEGIN RSA PRIVATE KEY MIICXQIBAAKBgQCv3L7Ow-----\nAAAA\n\
                 -----END RSA PRIVATE KEY MIICXQIBAAKBgQCv3L7Ow-----",
                KeyProblem::BadLabel,
            ),
            (
                "-----BEGIN RSA  PRIVATE KEY-----\nAAAA\n-----END RSA  PRIVATE KEY-----",
                KeyProblem::BadLabel,
            ),
        ] {
            assert_eq!(decode_private_key_pem(pem).err(), Some(problem), "{pem}");
        }
    }
}
