//! What the `jsonwebtoken` crate (aws_lc_rs backend) does with CloudBase ticket claims:
//! whether it signs with the fixture keys, the header bytes it writes, and tokens/s of
//! `encode` (which re-parses the key for every token).
//!
//! Usage: jwt-compare SECONDS KEYFILE...   (prints one JSON object per key)

use std::time::Instant;

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};

fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: f64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(2.0);
    for path in args {
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let pem = v["private_key"].as_str().unwrap();
        let claims = serde_json::json!({"alg":"RS256","env":"e","iat":1758597487691u64,"exp":1758598087691u64,"uid":"user_0001","refresh":3600000,"expire":1759202287691u64});
        let key = match EncodingKey::from_rsa_pem(pem.as_bytes()) {
            Ok(k) => k,
            Err(e) => {
                println!("{}", serde_json::json!({"key": path, "error": format!("{e:?}")}));
                continue;
            }
        };
        let header = match encode(&Header::new(Algorithm::RS256), &claims, &key) {
            Ok(t) => String::from_utf8(
                base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(t.split('.').next().unwrap()).unwrap(),
            )
            .unwrap(),
            Err(e) => {
                println!("{}", serde_json::json!({"key": path, "error": format!("{e:?}")}));
                continue;
            }
        };
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed().as_secs_f64() < seconds {
            encode(&Header::new(Algorithm::RS256), &claims, &key).unwrap();
            n += 1;
        }
        let per_sec = n as f64 / start.elapsed().as_secs_f64();
        println!("{}", serde_json::json!({"key": path, "header": header, "tokens_per_sec": per_sec.round()}));
    }
}
