//! [`Backend`]: which implementation performs the RSA operations.

use std::fmt;
use std::str::FromStr;

/// Which implementation performs the RSA operations.
///
/// Both produce byte-identical tickets (RSASSA-PKCS1-v1_5 is deterministic); they differ in
/// speed and in what they need to build. Parse one from its feature name:
///
/// ```
/// use cloudbase_ticket::Backend;
///
/// let backend: Backend = "aws-lc".parse()?;
/// assert_eq!(backend, Backend::default());
/// assert_eq!(backend.to_string(), "aws-lc");
/// assert!("openssl".parse::<Backend>().unwrap_err().to_string().contains("aws-lc"));
/// # Ok::<(), cloudbase_ticket::backend::ParseBackendError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// AWS-LC (C and assembly, constant-time, blinded, fault-checked). Feature `aws-lc`,
    /// on by default. The fastest choice.
    #[cfg(feature = "aws-lc")]
    AwsLc,
    /// RustCrypto `rsa` 0.10 (pure Rust, constant-time). Feature `rust-crypto`; for targets
    /// without a C toolchain.
    #[cfg(feature = "rust-crypto")]
    RustCrypto,
}

impl Default for Backend {
    /// AWS-LC when compiled in, else RustCrypto.
    fn default() -> Self {
        #[cfg(feature = "aws-lc")]
        {
            Backend::AwsLc
        }
        #[cfg(not(feature = "aws-lc"))]
        {
            Backend::RustCrypto
        }
    }
}

impl Backend {
    /// Every backend compiled into this build, the default first.
    pub fn all() -> &'static [Backend] {
        &[
            #[cfg(feature = "aws-lc")]
            Backend::AwsLc,
            #[cfg(feature = "rust-crypto")]
            Backend::RustCrypto,
        ]
    }

    /// The backend's name, which is also its Cargo feature: `aws-lc` or `rust-crypto`.
    pub fn name(self) -> &'static str {
        match self {
            #[cfg(feature = "aws-lc")]
            Backend::AwsLc => "aws-lc",
            #[cfg(feature = "rust-crypto")]
            Backend::RustCrypto => "rust-crypto",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A backend name that is not compiled into this build (from [`Backend::from_str`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseBackendError {
    name: String,
}

impl fmt::Display for ParseBackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Backend::all().iter().map(|b| b.name()).collect();
        write!(
            f,
            "unknown backend \"{}\"; this build has: {} (other backends are Cargo features: aws-lc, rust-crypto)",
            crate::text::truncate_escaped(&self.name, 32).escape_debug(),
            names.join(", ")
        )
    }
}

impl std::error::Error for ParseBackendError {}

impl FromStr for Backend {
    type Err = ParseBackendError;

    /// The backend named `aws-lc` or `rust-crypto`, when compiled into this build.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Backend::all()
            .iter()
            .copied()
            .find(|b| b.name() == name)
            .ok_or_else(|| ParseBackendError {
                name: name.to_string(),
            })
    }
}
