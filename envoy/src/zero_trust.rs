//! What `configs/zero-trust.yaml` needs besides keys: the authorization policy the tests and the
//! demo run, certificates for its mutual-TLS side (a CA, Envoy's server certificate, workload
//! client certificates with SPIFFE URI SANs, made with the `openssl` command), and `curl` as the
//! TLS client (the bed's own HTTP client speaks plaintext only).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::{AUDIENCE, BedError, ISSUER, REALM, Response};

/// The SPIFFE ID of the billing workload, the only caller the admin routes admit.
pub const BILLING_SPIFFE_ID: &str = "spiffe://cluster.local/ns/billing/sa/api";
/// Another workload of the mesh, with a valid certificate but no business on admin routes.
pub const SHOP_SPIFFE_ID: &str = "spiffe://cluster.local/ns/shop/sa/web";

/// The JWT filter of the chain: a token is optional (the authorization policy decides which
/// routes need an identity), and one that is present must be valid.
pub fn chain_jwt_plugin_config(jwks: &Value) -> String {
    json!({
        "realm": REALM,
        "providers": [{"name": "demo", "issuer": ISSUER, "audiences": [AUDIENCE], "jwks": {"inline": jwks},
            "clock_skew_seconds": 60}],
        "requirements": {"default": {"allow_missing": true}},
    })
    .to_string()
}

/// The policy of `zero-trust.yaml`, route rules chosen by Envoy route name:
/// - `orders`: GET with scope `orders:read`, by an authenticated caller;
/// - `admin`: only the billing workload (mTLS, SPIFFE ID), from loopback;
/// - `public`: anyone; anything else: nothing (default deny);
/// - everywhere: a caller whose `env` claim is not this instance's environment is denied.
pub fn authz_plugin_config() -> String {
    json!({
        "realm": REALM,
        "environment": "production",
        "policies": {
            "orders-read": {"action": "ALLOW", "rules": [{
                "to": [{"operation": {"methods": ["GET"]}}],
                "when": [{"scopes": {"all_of": ["orders:read"]}}]
            }]},
            "billing-admin": {"action": "ALLOW", "rules": [{
                "from": [{"source": {"principals": [BILLING_SPIFFE_ID.trim_start_matches("spiffe://")],
                    "ipBlocks": ["127.0.0.0/8"]}}]
            }]},
            "same-environment": {"action": "DENY", "rules": [{
                "when": [{"all": [{"authenticated": true}, {"not": {"environment": {"claim": "env"}}}]}]
            }]},
            "anyone": {"action": "ALLOW", "rules": [{}]},
        },
        "defaults": {"policies": ["same-environment"]},
        "routes": [
            {"name": "orders", "route_names": ["orders"], "policies": ["orders-read"]},
            {"name": "admin", "route_names": ["admin"], "policies": ["billing-admin"]},
            {"name": "public", "route_names": ["public"], "policies": ["anyone"]},
        ],
    })
    .to_string()
}

/// Certificates for the mutual-TLS side, in their own directory (a temporary one is removed on
/// drop).
pub struct Certs {
    dir: PathBuf,
    temporary: bool,
}

impl Certs {
    /// A CA, Envoy's server certificate (for `127.0.0.1` and `localhost`), and one client
    /// certificate per SPIFFE ID (files `<n>.pem`/`<n>.key`, `n` its index), in a temporary
    /// directory.
    pub fn generate(spiffe_ids: &[&str]) -> Result<Certs, BedError> {
        let dir = std::env::temp_dir().join(format!("zt-certs-{}-{}", std::process::id(), unique()));
        Self::generate_in(dir, true, spiffe_ids)
    }

    /// The same in `dir`, kept after this value is dropped unless `temporary` (the demo keeps
    /// its certificates for the `curl` lines it prints).
    pub fn generate_in(dir: PathBuf, temporary: bool, spiffe_ids: &[&str]) -> Result<Certs, BedError> {
        std::fs::create_dir_all(&dir).map_err(BedError::io(format!("create {}", dir.display())))?;
        let certs = Certs { dir, temporary };
        certs.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=zt test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ])?;
        certs.issue("server", "/CN=envoy", "subjectAltName=IP:127.0.0.1,DNS:localhost")?;
        for (index, id) in spiffe_ids.iter().enumerate() {
            certs.issue(&index.to_string(), "/CN=workload", &format!("subjectAltName=URI:{id}"))?;
        }
        Ok(certs)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn issue(&self, name: &str, subject: &str, san: &str) -> Result<(), BedError> {
        let (key, csr, pem) = (format!("{name}.key"), format!("{name}.csr"), format!("{name}.pem"));
        self.openssl(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            subject,
            "-addext",
            san,
            "-keyout",
            &key,
            "-out",
            &csr,
        ])?;
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-copy_extensions",
            "copy",
            "-out",
            &pem,
        ])
    }

    fn openssl(&self, args: &[&str]) -> Result<(), BedError> {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(&self.dir)
            .output()
            .map_err(BedError::io("run openssl (Debian package openssl)"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(BedError::Token(format!("openssl {}: {}", args.join(" "), String::from_utf8_lossy(&output.stderr))))
        }
    }
}

impl Drop for Certs {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A GET over mutual TLS with `curl`, presenting client certificate `client` of `certs` (or
/// none), the path sent exactly as given (`--path-as-is`: no client-side clean-up of `//` or
/// `/./`). Status and headers only matter to the tests; the body is kept.
pub fn mtls_get(
    certs: &Certs,
    client: Option<usize>,
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<Response, BedError> {
    let mut command = Command::new("curl");
    command
        .current_dir(certs.dir())
        .args(["--silent", "--show-error", "--http1.1", "--path-as-is", "--include", "--max-time", "10"])
        .args(["--cacert", "ca.pem", "--resolve", &format!("localhost:{port}:127.0.0.1")]);
    if let Some(index) = client {
        command.args(["--cert", &format!("{index}.pem"), "--key", &format!("{index}.key")]);
    }
    for (name, value) in headers {
        command.args(["--header", &format!("{name}: {value}")]);
    }
    let output = command
        .arg(format!("https://localhost:{port}{path}"))
        .output()
        .map_err(BedError::io("run curl (Debian package curl)"))?;
    if !output.status.success() {
        return Err(BedError::Http(format!(
            "curl {path}: {} {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    curl_response(&output.stdout)
}

/// `curl --include` output: the head as received, the body already decoded by curl.
fn curl_response(raw: &[u8]) -> Result<Response, BedError> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let (status, headers) = crate::http::parse_head(head)?;
    Ok(Response { status, headers, body: body.to_owned() })
}
