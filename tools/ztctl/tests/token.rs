//! `ztctl token` through the built binary: a token minted with a PEM key verifies with the JWT
//! filter's code against the JWKS (given alone, or replacing a configuration's remote keys), is
//! refused by the filter's reason name when it should be, and reads back as header and claims;
//! tokens pass on standard input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use jwt_simple::prelude::*;

/// The exit status and everything printed.
fn ztctl(args: &[&str], stdin: &[u8]) -> (i32, String) {
    let run = common::ztctl(args, std::str::from_utf8(stdin).unwrap());
    (run.code, run.stdout + &run.stderr)
}

#[test]
fn mint_verify_and_inspect_a_token() {
    let dir = std::env::temp_dir().join(format!("ztctl-token-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pair = RS256KeyPair::generate(2048).unwrap().with_key_id("demo-rs256");
    let (key, jwks, config) = (dir.join("key.pem"), dir.join("jwks.json"), dir.join("jwt.json"));
    std::fs::write(&key, pair.to_pem().unwrap()).unwrap();
    let jwk: serde_json::Value = serde_json::from_str(&pair.public_key().to_jwk()).unwrap();
    std::fs::write(&jwks, serde_json::json!({"keys": [jwk]}).to_string()).unwrap();
    // A configuration whose provider fetches its keys: --jwks stands in for the fetch.
    let remote = serde_json::json!({"providers": [{"name": "corp", "issuer": "https://idp.test", "audiences": ["api"],
        "jwks": {"remote": {"cluster": "idp", "uri": "https://idp.test/jwks"}}}]});
    std::fs::write(&config, remote.to_string()).unwrap();
    let path = |p: &std::path::Path| p.to_str().unwrap().to_owned();

    let (code, token) = ztctl(
        &[
            "token",
            "mint",
            "--key",
            &path(&key),
            "--alg",
            "RS256",
            "--kid",
            "demo-rs256",
            "--issuer",
            "https://idp.test",
            "--audience",
            "api",
            "--subject",
            "alice",
            "--claim",
            "scope=orders:read",
            "--lifetime",
            "600",
        ],
        b"",
    );
    assert_eq!(code, 0, "{token}");
    let token = token.trim().to_owned();
    assert_eq!(token.split('.').count(), 3, "{token}");

    let by_flags =
        ["token", "verify", "--jwks", &path(&jwks), "--issuer", "https://idp.test", "--audience", "api", "-"];
    let (code, text) = ztctl(&by_flags, token.as_bytes());
    assert_eq!(code, 0, "{text}");
    assert!(
        text.starts_with(
            "valid: provider cli, issuer https://idp.test, subject alice, audience api, scopes orders:read"
        ),
        "{text}"
    );
    assert!(!text.contains(&token), "the token is never printed");

    let by_config = ["token", "verify", "--config", &path(&config), "--jwks", &path(&jwks), "-"];
    let (code, text) = ztctl(&by_config, token.as_bytes());
    assert_eq!((code, text.starts_with("valid: provider corp")), (0, true), "{text}");
    let (code, text) = ztctl(&["token", "verify", "--config", &path(&config), "-"], token.as_bytes());
    assert_eq!(code, 1, "{text}");
    assert!(text.starts_with("refused: keys_unavailable") && text.contains("--jwks"), "{text}");

    let later =
        (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 3600).to_string();
    let (code, text) = ztctl(&[&by_flags[..8], &["--at", &later, "-"]].concat(), token.as_bytes());
    assert_eq!(code, 1, "{text}");
    assert!(text.starts_with("refused: expired"), "{text}");

    let (code, text) = ztctl(&["token", "inspect", "-"], token.as_bytes());
    assert_eq!(code, 0, "{text}");
    assert!(text.contains(r#""kid": "demo-rs256""#) && text.contains(r#""scope": "orders:read""#), "{text}");
    assert!(text.contains("expires: ") && text.contains("signature: not checked"), "{text}");

    let (code, text) =
        ztctl(&["token", "mint", "--key", &path(&key), "--alg", "RS256", "--issuer", "x", "--claim", "exp=1"], b"");
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("--claim \"exp\""), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}
