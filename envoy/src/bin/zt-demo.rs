//! `zt-demo OUT_DIR`: prepares `make demo`. It generates a key set and certificates (a CA,
//! Envoy's server certificate, client certificates for two workloads with SPIFFE URI SANs, in
//! `OUT_DIR/certs`), renders `envoy/configs/zero-trust-suite.yaml` (zt-suite: the JWT,
//! authorization, rate-limit and audit stages; records to Envoy's log) with the demo's
//! fixed ports into `OUT_DIR/envoy.yaml`, the ports into `OUT_DIR/ports.env`, and writes
//! `OUT_DIR/curl.txt`: `curl` lines that show each decision, and how to mint fresh tokens. The
//! private signing keys are kept in `OUT_DIR/keys` (owner-only files under `build/`, which git
//! ignores) while the demo runs, for `ztctl token mint`; `make demo-stop` removes them.

use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::json;
use zt_envoy_tests::full_chain::{Layout, audit_plugin_config, chain_ratelimit_plugin_config, render_full_chain};
use zt_envoy_tests::zero_trust::{BILLING_SPIFFE_ID, Certs, SHOP_SPIFFE_ID};
use zt_envoy_tests::{AUDIENCE, Alg, BedError, ISSUER, KeySet, Ports, SUBJECT, tamper};

const PORTS: Ports = Ports { listener: 10000, admin: 9901, upstream: 10080, idp: 10081 };

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

fn prepare(out: &std::path::Path) -> Result<(), BedError> {
    // Fail before starting anything if a fixed port is taken (often: a demo still running).
    for port in [PORTS.listener, PORTS.admin, PORTS.upstream] {
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).map_err(|e| BedError::Io {
            what: format!("port 127.0.0.1:{port} is busy (a demo still running? make demo-stop)"),
            source: e,
        })?;
    }
    let keys = KeySet::generate()?;
    std::fs::create_dir_all(out).map_err(BedError::io(format!("create {}", out.display())))?;
    // Absolute, so that the printed curl lines work from any directory.
    let out = &std::fs::canonicalize(out).map_err(BedError::io(format!("resolve {}", out.display())))?;
    let certs = Certs::generate_in(out.join("certs"), false, &[BILLING_SPIFFE_ID, SHOP_SPIFFE_ID])?;
    // The suite, one filter: the shipped default (zero-trust.yaml is the four-filter chain).
    let config = render_full_chain(
        Layout::Suite,
        PORTS,
        PORTS.idp,
        certs.dir(),
        &keys.jwks(),
        &chain_ratelimit_plugin_config(),
        &audit_plugin_config(None),
    )?;
    let write = |name: &str, text: &str| {
        let path = out.join(name);
        std::fs::write(&path, text).map_err(BedError::io(format!("write {}", path.display())))
    };
    write("envoy.yaml", &config)?;
    // scripts/demo.sh sources this: the ports are chosen in one place only.
    let ports =
        format!("LISTENER_PORT={}\nADMIN_PORT={}\nUPSTREAM_PORT={}\n", PORTS.listener, PORTS.admin, PORTS.upstream);
    write("ports.env", &ports)?;
    // Kept while the demo runs (`make demo-stop` removes them), for fresh tokens.
    keys.write_to(&out.join("keys"))?;
    write("curl.txt", &curl_lines(&keys, &certs, &out.join("keys"))?)
}

/// One line per decision the chain takes; tokens valid for five minutes, and how to mint more.
fn curl_lines(keys: &KeySet, certs: &Certs, key_dir: &std::path::Path) -> Result<String, BedError> {
    let reader = keys.valid_with(Alg::Es256, json!({"scope": "orders:read", "env": "production"}))?;
    let no_scope = keys.valid_with(Alg::Es256, json!({"scope": "profile", "env": "production"}))?;
    let dev = keys.valid_with(Alg::Rs256, json!({"scope": "orders:read", "env": "dev"}))?;
    let http = format!("http://127.0.0.1:{}", PORTS.listener);
    let tls = format!(
        "--resolve localhost:{port}:127.0.0.1 --cacert {dir}/ca.pem https://localhost:{port}",
        port = PORTS.listener,
        dir = certs.dir().display()
    );
    let client = |n: usize| format!("--cert {dir}/{n}.pem --key {dir}/{n}.key", dir = certs.dir().display());
    Ok(format!(
        "# scope orders:read (ES256, 5 minutes): 200, and the echo shows no authorization header\n\
         curl -i -H 'Authorization: Bearer {reader}' {http}/orders/1\n\
         # a valid token without the scope: 403, WWW-Authenticate: ... error=\"insufficient_scope\", scope=\"orders:read\"\n\
         curl -i -H 'Authorization: Bearer {no_scope}' {http}/orders/1\n\
         # a dev identity calling production: 403, policy same-environment\n\
         curl -i -H 'Authorization: Bearer {dev}' {http}/orders/1\n\
         # no token: 401, WWW-Authenticate: Bearer realm=\"zt-demo\"\n\
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
         # these tokens expire after 5 minutes: mint fresh ones with the demo's keys (in {keys} while it runs)\n\
         TOKEN=$(cargo run -q -p ztctl -- token mint --key {keys}/demo-es256.pem --alg ES256 --kid demo-es256 \
         --issuer {ISSUER} --audience {AUDIENCE} --subject {SUBJECT} --claim scope=orders:read --claim env=production)\n\
         curl -i -H \"Authorization: Bearer $TOKEN\" {http}/orders/1\n\
         # why is a token refused? the filter's own code says, by its reason name\n\
         echo \"$TOKEN\" | cargo run -q -p ztctl -- token verify --jwks {keys}/jwks.json --issuer {ISSUER} --audience {AUDIENCE} -\n",
        keys = key_dir.display(),
        tampered = tamper(&reader)?,
        billing = client(0),
        shop = client(1),
    ))
}
