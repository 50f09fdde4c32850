//! # cloudbase-ticket
//!
//! Tickets for CloudBase (Tencent Cloud) **custom login**, byte-identical to
//! `app.auth().createTicket(uid, options)` in `@cloudbase/node-sdk` 3.18.3.
//!
//! A backend holds the private key from the console file `tcb_custom_login.json` and signs a
//! short-lived ticket for one of its users; the client trades the ticket for CloudBase tokens at
//! `POST /auth/v1/signin/custom`.
//!
//! ```
//! use cloudbase_ticket::{Credentials, Issuer};
//!
//! // 1. Load the console's key file (or `Credentials::from_env()`), once.
//! let credentials = Credentials::from_file("fixtures/tcb_custom_login.json")?;
//! // 2. An issuer for the key's env; share it across threads.
//! let issuer = Issuer::new(credentials)?;
//! // 3. A ticket for your own user id; hand it to the client.
//! let ticket = issuer.create_ticket("your-customUserId")?;
//! assert!(ticket.starts_with(issuer.key_id()));
//! # Ok::<(), cloudbase_ticket::Error>(())
//! ```
//!
//! What the crate guarantees:
//!
//! * **Exact**: same key, clock and inputs give the same bytes as node-sdk (checked against
//!   vectors that the real npm package generates, see `scripts/`).
//! * **Real keys**: 1024-bit PKCS#1 keys, as the console issues them, work by default;
//!   PKCS#8, `\n` escapes, CRLF and BOMs are accepted; broken keys are refused at load.
//! * **Fast**: the key is parsed once; a ticket is one constant-time RSA signature, one JSON
//!   write and two base64 encodes.
//! * **Quiet about secrets**: no error, `Display` or `Debug` output contains key material, and
//!   key bytes are wiped when dropped.
//!
//! Where things are: [`Credentials`] (the console's key file, from a file, JSON or the
//! environment), [`Issuer`] (tickets), [`Verifier`] (checks tickets against a key set),
//! [`ticket`] (the wire format, [`ticket::insecure_decode`] and [`ticket::inspect`] for
//! looking inside a ticket without trusting it), [`clock`] (where "now" comes from, in ms),
//! [`uid`] (node-sdk's uid rule), [`Backend`] (who does the RSA). Every error is typed and its
//! one-line message names what is wrong and the likely fix: times in the wrong unit, tickets
//! quoted, percent-encoded or cut off on the way, keys without `env_id`, rotated keys (see the
//! README's "When a ticket doesn't work").
//!
//! Features: `aws-lc` (default signing backend), `rust-crypto` (pure-Rust backend), `client`
//! (the sign-in half: `client::Client` and `client::TokenManager`), `emulator` (a local
//! CloudBase custom-login server, `emulator::Emulator`), `cli` (the `cloudbase-ticket` tool,
//! with `serve`).
#![deny(missing_docs)]
#![deny(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod backend;
#[cfg(feature = "client")]
pub mod client;
pub mod clock;
pub mod credentials;
#[cfg(feature = "emulator")]
pub mod emulator;
pub mod issuer;
mod key;
pub mod public_key;
mod signer;
mod text;
pub mod ticket;
pub mod uid;
pub mod verify;

pub use backend::Backend;
pub use credentials::{Credentials, CredentialsError};
pub use issuer::{Issuer, IssuerError, TicketError, TicketOptions};
pub use public_key::PublicKey;
pub use verify::{Verifier, VerifierError, VerifyError};

/// Hooks for this crate's criterion benchmarks. Not part of the API: no stability promise.
#[doc(hidden)]
pub mod __bench {
    use crate::{Issuer, TicketError, TicketOptions};

    /// Everything a ticket costs except the RSA private-key operation: uid check, clock, JSON,
    /// base64, SHA-256, and encoding a (zero) signature.
    pub fn write_ticket_without_rsa(
        issuer: &Issuer,
        uid: &str,
        out: &mut String,
    ) -> Result<(), TicketError> {
        issuer.write_ticket_signed_by(uid, &TicketOptions::new(), out, |_, _| Ok(()))
    }

    /// The RSA private-key operation alone (PKCS#1 v1.5 over a SHA-256 digest).
    pub fn rsa_sign_digest(issuer: &Issuer, digest: &[u8; 32], signature: &mut [u8]) -> bool {
        issuer.sign_digest_for_bench(digest, signature)
    }

    /// Length of the issuer's signatures in bytes.
    pub fn signature_len(issuer: &Issuer) -> usize {
        issuer.signature_len()
    }
}

/// Any error of this crate, for applications that handle them alike (`?` converts each).
///
/// Its `Debug` output (`{:?}`) is the `Display` message, as `anyhow::Error`'s is, so that a
/// `fn main() -> Result<(), cloudbase_ticket::Error>` that fails prints a readable line such as
/// `Error: credentials file tcb_custom_login.json does not exist (download …)`. The alternate
/// form (`{:#?}`) shows the variant and its fields.
///
/// ```
/// let err = cloudbase_ticket::Error::from(
///     cloudbase_ticket::Credentials::from_file("no/such/file.json").unwrap_err(),
/// );
/// assert_eq!(format!("{err:?}"), err.to_string());
/// assert!(format!("{err:#?}").starts_with("Credentials("));
/// ```
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Loading credentials failed.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// Building an issuer failed.
    #[error(transparent)]
    Issuer(#[from] IssuerError),
    /// Creating a ticket failed.
    #[error(transparent)]
    Ticket(#[from] TicketError),
    /// Loading a public key failed.
    #[error(transparent)]
    PublicKey(#[from] public_key::PublicKeyError),
    /// Generating credentials failed.
    #[error(transparent)]
    Generate(#[from] credentials::GenerateError),
    /// Building a verifier failed.
    #[error(transparent)]
    Verifier(#[from] VerifierError),
    /// A ticket did not verify.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// A ticket did not parse.
    #[error(transparent)]
    Parse(#[from] ticket::ParseError),
    /// The sign-in client failed (feature `client`).
    #[cfg(feature = "client")]
    #[error(transparent)]
    Client(#[from] client::ClientError),
}

impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !f.alternate() {
            return std::fmt::Display::fmt(self, f);
        }
        let (variant, inner): (&str, &dyn std::fmt::Debug) = match self {
            Error::Credentials(e) => ("Credentials", e),
            Error::Issuer(e) => ("Issuer", e),
            Error::Ticket(e) => ("Ticket", e),
            Error::PublicKey(e) => ("PublicKey", e),
            Error::Generate(e) => ("Generate", e),
            Error::Verifier(e) => ("Verifier", e),
            Error::Verify(e) => ("Verify", e),
            Error::Parse(e) => ("Parse", e),
            #[cfg(feature = "client")]
            Error::Client(e) => ("Client", e),
        };
        f.debug_tuple(variant).field(inner).finish()
    }
}

impl From<uid::UidError> for Error {
    fn from(e: uid::UidError) -> Self {
        Error::Ticket(TicketError::InvalidUid(e))
    }
}
