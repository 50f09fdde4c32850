//! Claims of the README that are about the repository itself, checked against it.

use std::path::PathBuf;

fn read(rel: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The README names the backend of the tests' independent verifier; it must be the one the
/// `jsonwebtoken` dev-dependency enables: `rust_crypto`, since `aws_lc_rs` refuses the
/// console's 1024-bit keys (and would share AWS-LC with the signer under test).
#[test]
fn the_readme_names_the_backend_of_the_test_verifier_that_cargo_toml_enables() {
    let readme = read("README.md");
    let manifest = read("Cargo.toml");
    let claim = readme
        .split("\n\n")
        .find(|p| p.contains("independent verifier"))
        .expect("README.md says which verifier the tests use");
    // Both the written manifest and the one `cargo package` normalises list the features.
    let dev_dependency = manifest
        .split("\n[")
        .find(|section| {
            section.starts_with("dev-dependencies]")
                || section.starts_with("dev-dependencies.jsonwebtoken]")
        })
        .expect("Cargo.toml has dev-dependencies");
    let dev_dependency = if dev_dependency.starts_with("dev-dependencies]") {
        dev_dependency
            .lines()
            .find(|l| l.starts_with("jsonwebtoken"))
            .expect("jsonwebtoken is a dev-dependency")
    } else {
        dev_dependency
    };
    for backend in ["rust_crypto", "aws_lc_rs"] {
        let enabled = dev_dependency.contains(&format!("\"{backend}\""));
        let claimed = claim.contains(&format!("**`{backend}`**"));
        assert_eq!(
            enabled, claimed,
            "Cargo.toml enables jsonwebtoken's {backend}: {enabled}; README.md says the tests use it: {claimed}"
        );
    }
    assert!(claim.contains("**`rust_crypto`**"), "{claim}");
}
