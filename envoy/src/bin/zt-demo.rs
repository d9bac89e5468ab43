//! `zt-demo OUT_DIR`: prepares `make demo`, which runs the ready-to-run suite as shipped
//! (`envoy/standalone/zt-suite.yaml` and its policy file, from the repository's root). It makes
//! the issuer's HMAC secret and certificates (a CA, Envoy's server certificate, client
//! certificates for two workloads with SPIFFE URI SANs, in `OUT_DIR/certs`), writes the listener
//! with mutual TLS that the demo adds beside the shipped one (`OUT_DIR/mtls-listener.yaml`, for
//! Envoy's `--config-yaml`), the ports (`OUT_DIR/ports.env`), and `OUT_DIR/curl.txt`: `curl`
//! lines that show each decision, and how to mint fresh tokens. The secret is kept in
//! `OUT_DIR/keys` (owner-only files under `build/`, which git ignores: the raw secret for `ztctl
//! token mint`, the variable for Envoy's environment, a zt-jwt configuration for `ztctl token
//! verify`) while the demo runs; `make demo-stop` removes them.

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use base64::Engine as _;
use serde_json::{Value, json};
use zt_envoy_tests::demo::{SECRET_ENV, demo_issuer, hs256_token, mtls_listener, standalone_policy};
use zt_envoy_tests::zero_trust::{BILLING_SPIFFE_ID, Certs, SHOP_SPIFFE_ID};
use zt_envoy_tests::{BedError, tamper, workspace_root, write_private};

/// The shipped configuration's ports (its listener, admin and upstream), and the demo's mTLS
/// listener.
const LISTENER: u16 = 10000;
const ADMIN: u16 = 9901;
const UPSTREAM: u16 = 10080;
const MTLS: u16 = 10443;

fn main() -> ExitCode {
    let Some(out) = std::env::args().nth(1).map(PathBuf::from) else {
        eprintln!("usage: zt-demo OUT_DIR");
        return ExitCode::from(2);
    };
    match prepare(&out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zt-demo: {e}");
            ExitCode::FAILURE
        }
    }
}

fn prepare(out: &Path) -> Result<(), BedError> {
    // Fail before starting anything if a fixed port is taken (often: a demo still running).
    for port in [LISTENER, ADMIN, UPSTREAM, MTLS] {
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).map_err(|e| BedError::Io {
            what: format!("port 127.0.0.1:{port} is busy (a demo still running? make demo-stop)"),
            source: e,
        })?;
    }
    let root = workspace_root();
    let policy = standalone_policy(&root)?;
    std::fs::create_dir_all(out).map_err(BedError::io(format!("create {}", out.display())))?;
    // Absolute, so that the printed curl lines work from any directory.
    let out = &std::fs::canonicalize(out).map_err(BedError::io(format!("resolve {}", out.display())))?;
    let certs = Certs::generate_in(out.join("certs"), false, &[BILLING_SPIFFE_ID, SHOP_SPIFFE_ID])?;
    let write = |name: &str, text: &str| {
        let path = out.join(name);
        std::fs::write(&path, text).map_err(BedError::io(format!("write {}", path.display())))
    };
    let standalone = std::fs::read_to_string(root.join(zt_envoy_tests::demo::STANDALONE_SUITE))
        .map_err(BedError::io("read the standalone configuration"))?;
    write("mtls-listener.yaml", &mtls_listener(&standalone, MTLS, certs.dir())?)?;
    // scripts/demo.sh sources this: the ports are chosen in one place only.
    write(
        "ports.env",
        &format!("LISTENER_PORT={LISTENER}\nADMIN_PORT={ADMIN}\nUPSTREAM_PORT={UPSTREAM}\nMTLS_PORT={MTLS}\n"),
    )?;
    // A fresh random key of HS256's size, from jwt-simple's generator.
    let secret = jwt_simple::prelude::HS256Key::generate().to_bytes();
    let keys = out.join("keys");
    write_keys(&keys, &secret, &policy)?;
    write("curl.txt", &curl_lines(&secret, &policy, &certs, &keys)?)
}

/// The secret as the demo's tools take it, owner-only: `hmac.key` (raw, `ztctl token mint`),
/// `env` (Envoy's environment, sourced by scripts/demo.sh), `jwt.json` (the policy's JWT
/// section with the secret in it, `ztctl token verify --config`).
fn write_keys(dir: &Path, secret: &[u8], policy: &Value) -> Result<(), BedError> {
    std::fs::create_dir_all(dir).map_err(BedError::io(format!("create {}", dir.display())))?;
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    let mut jwt = policy["jwt"].clone();
    let slot = jwt.pointer_mut("/providers/0/hmac_keys/0/secret");
    *slot.ok_or_else(|| BedError::Template("the standalone policy's issuer has no HMAC key".to_owned()))? =
        json!(encoded);
    let files: [(&str, Vec<u8>); 3] = [
        ("hmac.key", secret.to_vec()),
        ("env", format!("export {SECRET_ENV}={encoded}\n").into_bytes()),
        ("jwt.json", jwt.to_string().into_bytes()),
    ];
    for (name, bytes) in files {
        write_private(&dir.join(name), &bytes)?;
    }
    Ok(())
}

/// One line per decision the suite takes; tokens valid for five minutes, and how to mint more.
fn curl_lines(secret: &[u8], policy: &Value, certs: &Certs, keys: &Path) -> Result<String, BedError> {
    let (issuer, audience) = demo_issuer(policy)?;
    let token = |claims: Value| hs256_token(secret, &issuer, &audience, claims);
    let reader = token(json!({"scope": "orders:read", "env": "production"}))?;
    let no_scope = token(json!({"scope": "profile", "env": "production"}))?;
    let dev = token(json!({"scope": "orders:read", "env": "dev"}))?;
    let http = format!("http://127.0.0.1:{LISTENER}");
    let tls = format!(
        "--resolve localhost:{MTLS}:127.0.0.1 --cacert {dir}/ca.pem https://localhost:{MTLS}",
        dir = certs.dir().display()
    );
    let client = |n: usize| format!("--cert {dir}/{n}.pem --key {dir}/{n}.key", dir = certs.dir().display());
    Ok(format!(
        "# scope orders:read (HS256, 5 minutes): 200, and the echo shows no authorization header\n\
         curl -i -H 'Authorization: Bearer {reader}' {http}/orders/1\n\
         # a valid token without the scope: 403, WWW-Authenticate: ... error=\"insufficient_scope\", scope=\"orders:read\"\n\
         curl -i -H 'Authorization: Bearer {no_scope}' {http}/orders/1\n\
         # a dev identity calling production: 403, policy same-environment\n\
         curl -i -H 'Authorization: Bearer {dev}' {http}/orders/1\n\
         # no token: 401, WWW-Authenticate: Bearer realm=\"zt-standalone\"\n\
         curl -i {http}/orders/1\n\
         # tampered token (payload edited, signature kept): 401, error=\"invalid_token\"\n\
         curl -i -H 'Authorization: Bearer {tampered}' {http}/orders/1\n\
         # the billing workload over mTLS ({BILLING_SPIFFE_ID}): 200\n\
         curl -i {billing} {tls}/admin/users\n\
         # another workload ({SHOP_SPIFFE_ID}): 403\n\
         curl -i {shop} {tls}/admin/users\n\
         # a public route: 200; any route without a rule: 403 default-deny\n\
         curl -i {http}/public/hello\n\
         curl -i {http}/hello\n\
         # these tokens expire after 5 minutes: mint fresh ones with the demo's secret (in {keys} while it runs)\n\
         TOKEN=$(cargo run -q -p ztctl -- token mint --key {keys}/hmac.key --alg HS256 \
         --issuer {issuer} --audience {audience} --subject alice --claim scope=orders:read --claim env=production)\n\
         curl -i -H \"Authorization: Bearer $TOKEN\" {http}/orders/1\n\
         # why is a token refused? the filter's own code says, by its reason name\n\
         echo \"$TOKEN\" | cargo run -q -p ztctl -- token verify --config {keys}/jwt.json -\n\
         # the policy: envoy/standalone/policies/zt-suite.yaml; check an edit, then move it into place (Envoy applies it)\n\
         cargo run -q -p ztctl -- check envoy/standalone/zt-suite.yaml\n",
        keys = keys.display(),
        tampered = tamper(&reader)?,
        billing = client(0),
        shop = client(1),
    ))
}
