//! Tokens as thirteen identity systems issue them, verified by the compiled JWT filter with each
//! system's key set fetched as the system serves it, then read by the authorization filter
//! for scopes and roles where each system puts them.
//!
//! One fixture function per system gives the provider block a user writes for it, the
//! documents it serves (discovery document, JWKS) and the JOSE header and claims of a token
//! it issues, with the claim names, shapes and lifetimes of its documentation; one driver runs
//! every fixture. Keys and identifiers are made up here, in the shapes the systems use.
//!
//! Tokens are signed with the `rsa` crate over the exact header and claims of the fixture
//! (serialised by `serde_json`, encoded by `base64`): `jwt-simple`, which generates the keys,
//! always writes its own `typ` and would give every system the same header.

use std::sync::OnceLock;
use std::time::Duration as StdDuration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jwt_simple::prelude::{Claims, Duration, ECDSAP256KeyPairLike, ES256KeyPair, RS256KeyPair};
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use serde_json::{Value, json};
use sha1::Digest as _;
use zt_host_tests::{Exchange, FilterSpec, Harness, Layout, Request, ScriptedResponse};

/// The harness clock; every token is issued a minute before it.
const NOW: u64 = 1_700_000_000;
const ISSUED: u64 = NOW - 60;

/// The key every system signs with here (one test loads one system, so they may share it),
/// a key no system publishes, and the encryption key Keycloak publishes beside its signing key.
struct Keys {
    signer: rsa::RsaPrivateKey,
    signer_jwk: Value,
    signer_spki: Vec<u8>,
    stranger: rsa::RsaPrivateKey,
    encryption_jwk: Value,
    /// The private half of `encryption_jwk`, which the SPIRE bundle also lists as its X.509 CA.
    encryption: rsa::RsaPrivateKey,
    /// SPIRE's JWT signing key (its default `jwt_key_type` is `ec-p256`) and a stranger's.
    ec_signer: ES256KeyPair,
    ec_stranger: ES256KeyPair,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let generate = || RS256KeyPair::generate(2048).unwrap();
        let private = |pair: &RS256KeyPair| rsa::RsaPrivateKey::from_pkcs8_der(&pair.to_der().unwrap()).unwrap();
        let public_jwk = |pair: &RS256KeyPair| serde_json::from_str::<Value>(&pair.public_key().to_jwk()).unwrap();
        let (signer, stranger, encryption) = (generate(), generate(), generate());
        Keys {
            signer: private(&signer),
            signer_jwk: public_jwk(&signer),
            signer_spki: signer.public_key().to_der().unwrap(),
            stranger: private(&stranger),
            encryption_jwk: public_jwk(&encryption),
            encryption: private(&encryption),
            ec_signer: ES256KeyPair::generate(),
            ec_stranger: ES256KeyPair::generate(),
        }
    })
}

/// The RSA public key of `jwk` (`kty`, `n`, `e`) with a system's own members added.
fn rsa_jwk(base: &Value, members: Value) -> Value {
    let mut jwk = json!({"kty": "RSA", "n": base["n"], "e": base["e"]});
    for (name, value) in members.as_object().unwrap() {
        jwk[name] = value.clone();
    }
    jwk
}

/// Stand-in bytes for the X.509 certificate a system wraps its key in. The filter never reads
/// `x5c` (keys never come from certificates); the sizes are those of a real certificate, and
/// the thumbprints are computed over these bytes as a system computes them over the DER.
fn certificate(system: &str) -> Vec<u8> {
    format!("certificate of the {system} signing key;").repeat(24).into_bytes()
}

/// `x5c` (standard base64, RFC 7517 §4.7), `x5t` (base64url SHA-1, §4.8), `x5t#S256` (§4.9).
fn x5c(system: &str) -> Value {
    json!([STANDARD.encode(certificate(system))])
}

fn x5t(system: &str) -> String {
    URL_SAFE_NO_PAD.encode(sha1::Sha1::digest(certificate(system)))
}

fn x5t_s256(system: &str) -> String {
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(certificate(system)))
}

/// What one identity system gives the filter.
struct System {
    /// The `providers[]` entry of the zt-jwt configuration, as a user writes it.
    provider: Value,
    /// What the system serves, as (cluster, `:path`, JSON body): its discovery document, its JWKS.
    served: Vec<(&'static str, String, Value)>,
    /// The JOSE header of a token it issues (`kid` names its published key).
    header: Value,
    claims: Value,
}

impl System {
    fn name(&self) -> &str {
        self.provider["name"].as_str().unwrap()
    }

    fn token(&self) -> String {
        match self.header["alg"].as_str() {
            Some("ES256") => sign_es256(&keys().ec_signer, &self.header, &self.claims),
            _ => sign(&keys().signer, &self.header, &self.claims),
        }
    }

    /// The same header (same `kid`) and claims, signed by a key the system never published.
    fn forged_token(&self) -> String {
        match self.header["alg"].as_str() {
            Some("ES256") => sign_es256(&keys().ec_stranger, &self.header, &self.claims),
            _ => sign(&keys().stranger, &self.header, &self.claims),
        }
    }
}

/// A compact JWS, RS256 (RFC 7515 §7.1, RFC 7518 §3.3).
fn sign(key: &rsa::RsaPrivateKey, header: &Value, claims: &Value) -> String {
    assert_eq!(header["alg"], "RS256");
    let part = |value: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap());
    let input = format!("{}.{}", part(header), part(claims));
    let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key.clone());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signer.sign(input.as_bytes()).to_bytes()))
}

/// An ES256 compact JWS by `jwt-simple`, whose header is `{"alg":"ES256","typ":"JWT","kid":…}`:
/// the header SPIRE writes on a JWT-SVID.
fn sign_es256(key: &ES256KeyPair, header: &Value, claims: &Value) -> String {
    assert_eq!(header, &json!({"alg": "ES256", "typ": "JWT", "kid": header["kid"]}));
    let kid = header["kid"].as_str().unwrap();
    let Value::Object(custom) = claims.clone() else { panic!("claims must be an object") };
    let mut claims = Claims::with_custom_claims(custom, Duration::from_secs(1));
    (claims.issued_at, claims.expires_at, claims.invalid_before) = (None, None, None);
    ES256KeyPair::from_bytes(&key.to_bytes()).unwrap().with_key_id(kid).sign(claims).unwrap()
}

// ---------------------------------------------------------------------------------------------
// The systems.

/// Keycloak 26: an access token of realm `shop` for the client `shop-web`, with an audience
/// mapper adding the API (by default `aud` is only `account`). The realm's certs endpoint
/// serves the `RSA-OAEP` encryption key beside the `RS256` signing key, both with certificates.
fn keycloak() -> System {
    let issuer = "https://sso.shop.example/realms/shop";
    let kid = "q0kFz2-yTfXNuKl1jC6a9Rr3bVwH5sDgE8mPoY7tLxA";
    let enc = rsa_jwk(
        &keys().encryption_jwk,
        json!({"kid": "Wm4bG8n1vQeR5sTyU2iO9pA3dF6gH0jK7lZxC4vBnMs", "use": "enc", "alg": "RSA-OAEP",
            "x5c": x5c("keycloak-enc"), "x5t": x5t("keycloak-enc"), "x5t#S256": x5t_s256("keycloak-enc")}),
    );
    let sig = rsa_jwk(
        &keys().signer_jwk,
        json!({"kid": kid, "use": "sig", "alg": "RS256",
            "x5c": x5c("keycloak"), "x5t": x5t("keycloak"), "x5t#S256": x5t_s256("keycloak")}),
    );
    System {
        provider: json!({"name": "keycloak", "issuer": issuer, "audiences": ["orders-api"],
            "jwks": {"oidc_discovery": {"cluster": "keycloak"}}}),
        served: vec![
            (
                "keycloak",
                "/realms/shop/.well-known/openid-configuration".into(),
                json!({"issuer": issuer, "jwks_uri": format!("{issuer}/protocol/openid-connect/certs"),
                    "id_token_signing_alg_values_supported": ["RS256"]}),
            ),
            ("keycloak", "/realms/shop/protocol/openid-connect/certs".into(), json!({"keys": [enc, sig]})),
        ],
        header: json!({"alg": "RS256", "typ": "JWT", "kid": kid}),
        claims: json!({
            "exp": ISSUED + 300, "iat": ISSUED, "auth_time": ISSUED - 30,
            "jti": "onrtac:6a1f0d2e-8c4b-4f7a-9e3d-2b5c8a7f1e60", "iss": issuer,
            "aud": ["orders-api", "account"], "sub": "f1c4f64e-2c0c-4cda-8c9f-9f3f8f3a2b0e",
            "typ": "Bearer", "azp": "shop-web", "sid": "4c0a3a8a-3a47-4f2f-8e89-9e5f9b0a0a0a", "acr": "1",
            "allowed-origins": ["https://shop.example"],
            "realm_access": {"roles": ["default-roles-shop", "offline_access", "uma_authorization", "orders-reader"]},
            "resource_access": {
                "orders-api": {"roles": ["orders-viewer"]},
                "account": {"roles": ["manage-account", "manage-account-links", "view-profile"]},
            },
            "scope": "openid profile email orders:read", "email_verified": true, "name": "Alice Liddell",
            "preferred_username": "alice", "given_name": "Alice", "family_name": "Liddell",
            "email": "alice@shop.example",
        }),
    }
}

const TENANT: &str = "3fa85f64-5717-4562-b3fc-2c963f66afa6";

/// The tenant's key set as `login.microsoftonline.com` serves it: no `alg`, `kid` = `x5t`,
/// a certificate, and the members `cloud_instance_name` and `issuer`.
fn entra_jwks() -> Value {
    let thumbprint = x5t("entra");
    json!({"keys": [rsa_jwk(&keys().signer_jwk, json!({"use": "sig", "kid": thumbprint, "x5t": thumbprint,
        "x5c": x5c("entra"), "cloud_instance_name": "microsoftonline.com",
        "issuer": format!("https://login.microsoftonline.com/{TENANT}/v2.0")}))]})
}

/// Microsoft Entra ID, a v1.0 access token (the API's manifest leaves `accessTokenAcceptedVersion`
/// null) for a web API whose App ID URI is `api://orders`: issuer `sts.windows.net`, `scp` a
/// space-delimited string, `roles` an array, `x5t` in the header, 60 to 90 minutes of life.
fn entra_v1() -> System {
    let issuer = format!("https://sts.windows.net/{TENANT}/");
    let thumbprint = x5t("entra");
    System {
        provider: json!({"name": "entra", "issuer": issuer, "audiences": ["api://orders"],
            "jwks": {"remote": {"cluster": "entra",
                "uri": format!("https://login.microsoftonline.com/{TENANT}/discovery/keys")}}}),
        served: vec![("entra", format!("/{TENANT}/discovery/keys"), entra_jwks())],
        header: json!({"typ": "JWT", "alg": "RS256", "x5t": thumbprint, "kid": thumbprint}),
        claims: json!({
            "aud": "api://orders", "iss": issuer, "iat": ISSUED, "nbf": ISSUED, "exp": ISSUED + 4799,
            "acr": "1", "aio": "AVQAq/8TAAAAk3b9", "amr": ["pwd", "mfa"],
            "appid": "0c7f6e2a-1d3b-4a5c-9e8f-7a6b5c4d3e2f", "appidacr": "0",
            "family_name": "Liddell", "given_name": "Alice", "ipaddr": "203.0.113.7", "name": "Alice Liddell",
            "oid": "9b8a7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d", "rh": "0.AXoAZF-oP.",
            "roles": ["Orders.Approve"], "scp": "Orders.Read User.Read",
            "sub": "l3_roISQU222bULS9yi2k0XpqpOiMz5H3ZACo1GeXA", "tid": TENANT,
            "unique_name": "alice@shop.example", "upn": "alice@shop.example", "uti": "fqiBqXLPj0eQa82S-IYFAA",
            "ver": "1.0",
        }),
    }
}

/// Microsoft Entra ID, a v2.0 access token (`accessTokenAcceptedVersion: 2`): issuer
/// `login.microsoftonline.com/{tenant}/v2.0`, `aud` the API's client id, `azp`, `scp` a string,
/// `roles` an array, `ver: "2.0"`, no `x5t` in the header. Keys found by the tenant's discovery.
fn entra_v2() -> System {
    let issuer = format!("https://login.microsoftonline.com/{TENANT}/v2.0");
    let api = "6e74172b-be56-4843-9ff4-e66a39bb12e3";
    System {
        provider: json!({"name": "entra", "issuer": issuer, "audiences": [api],
            "jwks": {"oidc_discovery": {"cluster": "entra"}}}),
        served: vec![
            (
                "entra",
                format!("/{TENANT}/v2.0/.well-known/openid-configuration"),
                json!({"issuer": issuer,
                    "jwks_uri": format!("https://login.microsoftonline.com/{TENANT}/discovery/v2.0/keys"),
                    "token_endpoint": format!("https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token")}),
            ),
            ("entra", format!("/{TENANT}/discovery/v2.0/keys"), entra_jwks()),
        ],
        header: json!({"typ": "JWT", "alg": "RS256", "kid": x5t("entra")}),
        claims: json!({
            "aud": api, "iss": issuer, "iat": ISSUED, "nbf": ISSUED, "exp": ISSUED + 4385,
            "aio": "AWQAm/8TAAAA", "azp": "0c7f6e2a-1d3b-4a5c-9e8f-7a6b5c4d3e2f", "azpacr": "0",
            "name": "Alice Liddell", "oid": "9b8a7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d",
            "preferred_username": "alice@shop.example", "rh": "0.AXoAZF-oP.", "roles": ["Orders.Approve"],
            "scp": "Orders.Read User.Read", "sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ", "tid": TENANT,
            "uti": "fqiBqXLPj0eQa82S-IYFAA", "ver": "2.0",
        }),
    }
}

/// Auth0: an access token for the API `https://api.shop.example` requested with `openid`, so
/// `aud` also holds the userinfo URL; RBAC with "Add Permissions in the Access Token" gives
/// `permissions`; the default lifetime is 24 hours. The issuer ends with `/`.
fn auth0() -> System {
    let issuer = "https://shop.eu.auth0.com/";
    let kid = "Tq3zAsK9vX1bN7mR2cY5wE8dF0gH4jL6";
    System {
        provider: json!({"name": "auth0", "issuer": issuer, "audiences": ["https://api.shop.example"],
            "jwks": {"oidc_discovery": {"cluster": "auth0"}}}),
        served: vec![
            (
                "auth0",
                "/.well-known/openid-configuration".into(),
                json!({"issuer": issuer, "jwks_uri": "https://shop.eu.auth0.com/.well-known/jwks.json"}),
            ),
            (
                "auth0",
                "/.well-known/jwks.json".into(),
                json!({"keys": [rsa_jwk(&keys().signer_jwk, json!({"use": "sig", "kid": kid,
                    "x5t": x5t("auth0"), "x5c": x5c("auth0"), "alg": "RS256"}))]}),
            ),
        ],
        header: json!({"alg": "RS256", "typ": "JWT", "kid": kid}),
        claims: json!({
            "iss": issuer, "sub": "auth0|6571b2c3d4e5f6a7b8c9d0e1",
            "aud": ["https://api.shop.example", "https://shop.eu.auth0.com/userinfo"],
            "iat": ISSUED, "exp": ISSUED + 86_400, "scope": "openid profile email read:orders",
            "azp": "pX8kQ2mN5vB7cR1tY4wZ6aS9dF3gH0jL", "permissions": ["read:orders", "create:orders"],
        }),
    }
}

/// Okta: an access token of the custom authorization server `default`: `aud` `api://default`,
/// `scp` an array, `cid` (client id), `uid` (user id), `ver: 1`, no `typ` in the header.
fn okta() -> System {
    let issuer = "https://shop.okta.com/oauth2/default";
    let kid = "Xq9m3a7p1Zs0_yV2kLr8TbN4cWdE6fGhJ5uIoQwErTy";
    System {
        provider: json!({"name": "okta", "issuer": issuer, "audiences": ["api://default"],
            "jwks": {"oidc_discovery": {"cluster": "okta"}}}),
        served: vec![
            (
                "okta",
                "/oauth2/default/.well-known/openid-configuration".into(),
                json!({"issuer": issuer, "jwks_uri": "https://shop.okta.com/oauth2/default/v1/keys"}),
            ),
            (
                "okta",
                "/oauth2/default/v1/keys".into(),
                json!({"keys": [rsa_jwk(&keys().signer_jwk, json!({"alg": "RS256", "kid": kid, "use": "sig"}))]}),
            ),
        ],
        header: json!({"kid": kid, "alg": "RS256"}),
        claims: json!({
            "ver": 1, "jti": "AT.u7VbN3kQ9wE2rT5yU8iO1pA4sD6fG0hJ", "iss": issuer, "aud": "api://default",
            "iat": ISSUED, "exp": ISSUED + 3600, "cid": "0oa1b2c3d4E5F6g7H8i9", "uid": "00u1a2b3c4D5E6f7G8h9",
            "scp": ["openid", "profile", "orders.read"], "auth_time": ISSUED - 30, "sub": "alice@shop.example",
        }),
    }
}

/// Google: an ID token for the OAuth client `…apps.googleusercontent.com` (`aud` = `azp` = the
/// client id). The discovery document lives on `accounts.google.com`, the keys on
/// `www.googleapis.com`, which needs its own cluster.
fn google() -> System {
    let issuer = "https://accounts.google.com";
    let client = "1234987819200-okdsl2q1f3e5g7h9j0k4m6n8p0r2t4v6.apps.googleusercontent.com";
    let kid = "a50f6e70ef4b548a5fd9142eecd1fb8f54dce9ee";
    System {
        provider: json!({"name": "google", "issuer": issuer, "audiences": [client],
            "required_claims": {"email_verified": true},
            "jwks": {"oidc_discovery": {"cluster": "google",
                "jwks_clusters": {"www.googleapis.com": "googleapis"}}}}),
        served: vec![
            (
                "google",
                "/.well-known/openid-configuration".into(),
                json!({"issuer": issuer, "jwks_uri": "https://www.googleapis.com/oauth2/v3/certs"}),
            ),
            (
                "googleapis",
                "/oauth2/v3/certs".into(),
                json!({"keys": [rsa_jwk(&keys().signer_jwk, json!({"use": "sig", "alg": "RS256", "kid": kid}))]}),
            ),
        ],
        header: json!({"alg": "RS256", "kid": kid, "typ": "JWT"}),
        claims: json!({
            "iss": issuer, "azp": client, "aud": client, "sub": "110169484474386276334", "hd": "shop.example",
            "email": "alice@shop.example", "email_verified": true, "at_hash": "HK6E_P6Dh8Y93mRNtsDB1Q",
            "name": "Alice Liddell", "picture": "https://lh3.googleusercontent.com/a/ACg8ocJ",
            "given_name": "Alice", "family_name": "Liddell", "iat": ISSUED, "exp": ISSUED + 3600,
        }),
    }
}

/// Kubernetes: a projected service-account token (`serviceAccountToken` volume source with
/// `audience: orders-api`, `expirationSeconds: 3600`) of `shop/checkout`. The API server's
/// `/openid/v1/jwks` gives `alg` and `use`; the `kid` is the base64url SHA-256 of the key's
/// DER; the header has no `typ`.
fn kubernetes() -> System {
    let issuer = "https://kubernetes.default.svc.cluster.local";
    let kid = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(&keys().signer_spki));
    System {
        provider: json!({"name": "kubernetes", "issuer": issuer, "audiences": ["orders-api"],
            "jwks": {"remote": {"cluster": "kube-apiserver", "uri": "https://kubernetes.default.svc/openid/v1/jwks"}}}),
        served: vec![(
            "kube-apiserver",
            "/openid/v1/jwks".into(),
            json!({"keys": [rsa_jwk(&keys().signer_jwk, json!({"use": "sig", "kid": kid, "alg": "RS256"}))]}),
        )],
        header: json!({"alg": "RS256", "kid": kid}),
        claims: json!({
            "aud": ["orders-api"], "exp": ISSUED + 3600, "iat": ISSUED, "iss": issuer,
            "jti": "e51f1fbc-4733-4b85-a59f-ba80c0523874",
            "kubernetes.io": {
                "namespace": "shop",
                "node": {"name": "worker-2", "uid": "517eb86e-b863-451b-bf70-86cb61439a3a"},
                "pod": {"name": "checkout-7d9f8b6c5-x2x4q", "uid": "0d8b260e-ef0e-45fb-be8e-ff44f97722e8"},
                "serviceaccount": {"name": "checkout", "uid": "e6a8680e-d103-4cce-80ea-03acbbeacf7d"},
            },
            "nbf": ISSUED, "sub": "system:serviceaccount:shop:checkout",
        }),
    }
}

/// GitHub Actions: the job's OIDC token requested with the audience `https://orders.shop.example`
/// (`core.getIDToken(audience)`); `nbf` five minutes before `iat` and six hours of life (as in
/// a token GitHub issued in 2025), `x5t` in the header and on the key, every custom claim a
/// string.
fn github_actions() -> System {
    let issuer = "https://token.actions.githubusercontent.com";
    let kid = "38826b17-6a30-5f9b-b169-8beb8202f723";
    System {
        provider: json!({"name": "github-actions", "issuer": issuer, "audiences": ["https://orders.shop.example"],
            "jwks": {"oidc_discovery": {"cluster": "github-actions"}}}),
        served: vec![
            (
                "github-actions",
                "/.well-known/openid-configuration".into(),
                json!({"issuer": issuer, "jwks_uri": "https://token.actions.githubusercontent.com/.well-known/jwks"}),
            ),
            (
                "github-actions",
                "/.well-known/jwks".into(),
                json!({"keys": [rsa_jwk(&keys().signer_jwk, json!({"alg": "RS256", "use": "sig", "kid": kid,
                    "x5c": x5c("github"), "x5t": x5t("github")}))]}),
            ),
        ],
        header: json!({"alg": "RS256", "kid": kid, "typ": "JWT", "x5t": x5t("github")}),
        claims: json!({
            "actor": "alice", "actor_id": "43356", "aud": "https://orders.shop.example", "base_ref": "",
            "event_name": "push", "exp": ISSUED + 21_600, "head_ref": "", "iat": ISSUED, "iss": issuer,
            "job_workflow_ref": "shop/orders/.github/workflows/deploy.yml@refs/heads/main",
            "job_workflow_sha": "0f661a4a011d77cb21fa4dc7013d9b6f928666ed",
            "jti": "58772c9f-4d75-4fc8-8956-7dd522569a00", "nbf": ISSUED - 300, "ref": "refs/heads/main",
            "ref_protected": "true", "ref_type": "branch", "repository": "shop/orders", "repository_id": "957014466",
            "repository_owner": "shop", "repository_owner_id": "1342004", "repository_visibility": "private",
            "run_attempt": "1", "run_id": "14144996512", "run_number": "3", "runner_environment": "github-hosted",
            "sha": "0f661a4a011d77cb21fa4dc7013d9b6f928666ed", "sub": "repo:shop/orders:ref:refs/heads/main",
            "workflow": "Deploy", "workflow_ref": "shop/orders/.github/workflows/deploy.yml@refs/heads/main",
            "workflow_sha": "0f661a4a011d77cb21fa4dc7013d9b6f928666ed",
        }),
    }
}

/// Dex: an ID token for the static client `orders-web` after a GitHub login: `sub` the
/// base64 protobuf of user id and connector, `groups`, `federated_claims`, 24 hours of life
/// (`expiry.idTokens` default), no `typ` in the header.
fn dex() -> System {
    let issuer = "https://dex.shop.example";
    let kid = "4f0c6bd3b1a97e5c2d8f3a6e9b0c1d2e3f4a5b6c";
    System {
        provider: json!({"name": "dex", "issuer": issuer, "audiences": ["orders-web"],
            "jwks": {"oidc_discovery": {"cluster": "dex"}}}),
        served: vec![
            (
                "dex",
                "/.well-known/openid-configuration".into(),
                json!({"issuer": issuer, "jwks_uri": "https://dex.shop.example/keys"}),
            ),
            (
                "dex",
                "/keys".into(),
                json!({"keys": [rsa_jwk(&keys().signer_jwk, json!({"use": "sig", "kid": kid, "alg": "RS256"}))]}),
            ),
        ],
        header: json!({"alg": "RS256", "kid": kid}),
        claims: json!({
            "iss": issuer, "sub": "CgcyMzQyNzQ5EgZnaXRodWI", "aud": "orders-web", "exp": ISSUED + 86_400,
            "iat": ISSUED, "at_hash": "HK6E_P6Dh8Y93mRNtsDB1Q", "email": "alice@shop.example",
            "email_verified": true, "groups": ["shop:orders-admins", "shop:developers"], "name": "Alice Liddell",
            "preferred_username": "alice", "federated_claims": {"connector_id": "github", "user_id": "2342749"},
        }),
    }
}

/// SPIRE 1.x: a JWT-SVID of the workload `spiffe://example.org/ns/shop/sa/web` for the audience
/// `spiffe://example.org/orders`, from a server without `jwt_issuer` (no `iss`), verified
/// against the trust bundle its bundle endpoint serves (SPIFFE Trust Domain and Bundle §4):
/// an `x509-svid` CA with its certificate, a `jwt-svid` signing key, `spiffe_sequence`,
/// `spiffe_refresh_hint`. SPIRE's JWT-SVIDs live five minutes by default.
fn spire() -> System {
    let jwt_key = serde_json::from_str::<Value>(&keys().ec_signer.public_key().to_jwk()).unwrap();
    let kid = "uZSy4F8ENlMlBq1pvyTFHhwYEzNCk6Vj";
    let ca = rsa_jwk(&keys().encryption_jwk, json!({"use": "x509-svid", "x5c": x5c("spire-ca")}));
    let svid =
        json!({"kty": "EC", "crv": "P-256", "x": jwt_key["x"], "y": jwt_key["y"], "kid": kid, "use": "jwt-svid"});
    System {
        provider: json!({"name": "spire", "spiffe": {"trust_domain": "example.org"},
            "audiences": ["spiffe://example.org/orders"],
            "jwks": {"remote": {"cluster": "spire_bundle", "uri": "https://spire-server.spire.svc:8443/"}}}),
        served: vec![(
            "spire_bundle",
            "/".into(),
            json!({"keys": [ca, svid], "spiffe_sequence": 12, "spiffe_refresh_hint": 300}),
        )],
        header: json!({"alg": "ES256", "typ": "JWT", "kid": kid}),
        claims: json!({"aud": ["spiffe://example.org/orders"], "exp": ISSUED + 300, "iat": ISSUED,
            "sub": "spiffe://example.org/ns/shop/sa/web"}),
    }
}

/// Amazon Cognito: an access token of a user pool for the app client `4k2v6p2clsqu8r3vaq0f4tt0lm`.
/// Access tokens carry no `aud`; the client is `client_id`, `token_use` is `access`, `scope`
/// a string, groups in `cognito:groups`. Keys at the pool's `/.well-known/jwks.json`, with `alg`.
fn cognito() -> System {
    let issuer = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Ab12Cd34E";
    let kid = "1z2Y3x4W5v6U7t8S9r0QpOnMlKjIhGfEdCbA=";
    System {
        provider: json!({"name": "cognito", "issuer": issuer, "client_ids": ["4k2v6p2clsqu8r3vaq0f4tt0lm"],
            "required_claims": {"token_use": "access"},
            "jwks": {"remote": {"cluster": "cognito", "uri": format!("{issuer}/.well-known/jwks.json")}}}),
        served: vec![(
            "cognito",
            "/eu-west-1_Ab12Cd34E/.well-known/jwks.json".into(),
            json!({"keys": [rsa_jwk(&keys().signer_jwk, json!({"alg": "RS256", "kid": kid, "use": "sig"}))]}),
        )],
        header: json!({"kid": kid, "alg": "RS256"}),
        claims: json!({
            "sub": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", "cognito:groups": ["orders-readers"], "iss": issuer,
            "version": 2, "client_id": "4k2v6p2clsqu8r3vaq0f4tt0lm", "origin_jti": "b2c9a7e5-1f3d-4c6b-8a9e-0d1f2e3c4b5a",
            "event_id": "4f7d8e9c-0a1b-4c2d-9e3f-5a6b7c8d9e0f", "token_use": "access", "scope": "orders/read openid",
            "auth_time": ISSUED, "exp": ISSUED + 3600, "iat": ISSUED, "jti": "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9",
            "username": "alice",
        }),
    }
}

const OTHER_TENANT: &str = "9b1c2d3e-4f5a-4b6c-8d7e-0f1a2b3c4d5e";

/// Microsoft Entra ID, a multi-tenant application: v2.0 access tokens of any tenant carry
/// `iss` `login.microsoftonline.com/{tid}/v2.0`, all signed with the common key set. The
/// provider lists the tenants it serves; the keys come from the common endpoint.
fn entra_multi_tenant() -> System {
    let mut system = entra_v2();
    system.provider = json!({"name": "entra", "issuer": "https://login.microsoftonline.com/{tenantid}/v2.0",
        "tenants": [TENANT, OTHER_TENANT], "audiences": [system.claims["aud"]],
        "jwks": {"remote": {"cluster": "entra", "uri": "https://login.microsoftonline.com/common/discovery/v2.0/keys"}}});
    system.served = vec![("entra", "/common/discovery/v2.0/keys".into(), entra_jwks())];
    system
}

/// An issuer on a floating-point clock (RFC 7519 §2 allows non-integer NumericDates).
fn float_clock() -> System {
    let issuer = "https://auth.float.example";
    let kid = "f1";
    System {
        provider: json!({"name": "float", "issuer": issuer, "audiences": ["orders-api"],
            "jwks": {"remote": {"cluster": "float", "uri": format!("{issuer}/jwks.json")}}}),
        served: vec![(
            "float",
            "/jwks.json".into(),
            json!({"keys": [rsa_jwk(&keys().signer_jwk, json!({"alg": "RS256", "kid": kid}))]}),
        )],
        header: json!({"alg": "RS256", "typ": "JWT", "kid": kid}),
        claims: json!({"iss": issuer, "aud": "orders-api", "sub": "alice",
            "iat": ISSUED as f64 + 0.318_42, "nbf": ISSUED as f64 + 0.318_42, "exp": ISSUED as f64 + 600.318_42}),
    }
}

// ---------------------------------------------------------------------------------------------
// The driver.

/// Envoy with zt-jwt configured for `system` alone, the system's documents scripted on their
/// clusters, the start-up fetches done.
fn envoy_for(system: &System) -> Harness {
    envoy_in(Layout::Chain, system, &[])
}

/// The same with the stages `after` the JWT stage, as filters or as the suite (`layout`),
/// results in filter state.
fn envoy_in(layout: Layout, system: &System, after: &[(&str, &Value)]) -> Harness {
    let mut envoy = Harness::new();
    envoy.clock().set_unix_seconds(NOW);
    for (cluster, path, body) in &system.served {
        envoy.script_http_path(cluster, path, ScriptedResponse::ok(body.to_string()));
    }
    let jwt = json!({"realm": "api", "providers": [system.provider]});
    let sections: Vec<(&str, &Value)> = [("jwt", &jwt)].into_iter().chain(after.iter().copied()).collect();
    for filter in layout.filters_publishing(&sections, &[]) {
        envoy.load(filter).unwrap();
    }
    envoy.advance(StdDuration::from_millis(200)).unwrap();
    let fetched: Vec<(String, String)> =
        envoy.http_calls().iter().map(|c| (c.cluster.clone(), c.header(":path").unwrap().to_owned())).collect();
    let served: Vec<(String, String)> = system.served.iter().map(|(c, p, _)| (c.to_string(), p.clone())).collect();
    assert_eq!(fetched, served, "{}: every document fetched once, in order\n{}", system.name(), envoy.log_text());
    envoy
}

fn bearer(token: &str) -> Request {
    Request::get("/orders/42").header("authorization", format!("Bearer {token}"))
}

/// Who the caller is, as filter state names them: zt-jwt's identity, or the suite's entry.
fn caller(layout: Layout, exchange: &Exchange) -> Value {
    match layout {
        Layout::Chain => identity(exchange),
        Layout::Suite => {
            let entry: Value =
                serde_json::from_str(&exchange.filter_state_text("zt.suite").expect("the suite's entry"))
                    .expect("JSON");
            entry["identity"].clone()
        }
    }
}

fn identity(exchange: &Exchange) -> Value {
    serde_json::from_str(&exchange.filter_state_text("zt.identity").expect("an identity in filter state")).unwrap()
}

fn accepted(system: System) {
    let mut envoy = envoy_for(&system);
    let exchange = envoy.send(bearer(&system.token()));
    assert_eq!(exchange.status(), Some(200), "{}: {exchange:?}\n{}", system.name(), envoy.log_text());
    assert!(exchange.reached_upstream());
    let identity = identity(&exchange);
    assert_eq!(identity["provider"], system.name());
    // A JWT-SVID without `iss` is handed on with an empty one.
    assert_eq!(identity["iss"], *system.claims.get("iss").unwrap_or(&json!("")));
    assert_eq!(identity["sub"], system.claims["sub"]);
    assert_eq!(identity["claims"], system.claims, "every claim handed on as issued");
    let counter =
        format!("zt_jwt.allowed.{}", system.name().replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_"));
    assert_eq!(envoy.metric(&counter), Some(1), "counted under its provider");
}

fn refused(system: System) {
    let mut envoy = envoy_for(&system);
    let exchange = envoy.send(bearer(&system.forged_token()));
    let reply = exchange.local_reply().unwrap_or_else(|| panic!("{}: not refused: {exchange:?}", system.name()));
    assert_eq!(reply.status, 401);
    assert_eq!(reply.header("www-authenticate"), Some(r#"Bearer realm="api", error="invalid_token""#));
    assert_eq!(exchange.filter_state_text("zt.identity"), None);
    // Refused for its signature: the `kid` is known, so it is neither a refetch nor a claim rule.
    assert_eq!(envoy.metric("zt_jwt.denied.bad_signature"), Some(1), "{}", envoy.log_text());
    assert_eq!(envoy.http_calls().len(), system.served.len(), "no refetch for a known kid");
}

macro_rules! matrix {
    ($($system:ident),* $(,)?) => {$(
        mod $system {
            #[test]
            fn a_token_as_issued_reaches_the_upstream_with_its_identity() {
                super::accepted(super::$system());
            }

            #[test]
            fn the_same_token_signed_by_a_key_not_in_the_jwks_is_401() {
                super::refused(super::$system());
            }
        }
    )*};
}

matrix!(
    keycloak,
    entra_v1,
    entra_v2,
    entra_multi_tenant,
    auth0,
    okta,
    google,
    kubernetes,
    github_actions,
    dex,
    spire,
    cognito,
    float_clock
);

/// A refusal of `token` by `system`'s filter, for the reason given.
fn refused_for(system: &System, token: &str, reason: &str) {
    let mut envoy = envoy_for(system);
    let exchange = envoy.send(bearer(token));
    assert_eq!(exchange.status(), Some(401), "{}: {exchange:?}", system.name());
    assert_eq!(envoy.metric(&format!("zt_jwt.denied.{reason}")), Some(1), "{}", envoy.log_text());
}

#[test]
fn spire_a_jwt_svid_of_another_trust_domain_or_audience_is_refused() {
    let mut system = spire();
    system.claims["sub"] = json!("spiffe://evil.example/ns/shop/sa/web");
    refused_for(&system, &system.token(), "unknown_issuer");
    let mut system = spire();
    system.claims["aud"] = json!(["spiffe://example.org/payments"]);
    refused_for(&system, &system.token(), "audience_mismatch");
}

/// The bundle's X.509 CA key never verifies a JWT, whatever the token's header says.
#[test]
fn spire_a_jwt_signed_by_the_bundles_x509_ca_key_is_refused() {
    let system = spire();
    let header = json!({"alg": "RS256", "typ": "JWT"});
    let token = sign(&keys().encryption, &header, &system.claims);
    refused_for(&system, &token, "algorithm_not_allowed");
}

#[test]
fn spire_the_workload_is_the_callers_principal_for_authorization() {
    let authz = |principal: &str| {
        json!({"realm": "api", "policies": {"workload": {"action": "ALLOW",
            "rules": [{"from": [{"source": {"principals": [principal]}}]}]}},
            "defaults": {"policies": ["workload"]}})
    };
    let system = spire();
    for layout in Layout::ALL {
        let mut envoy = envoy_in(layout, &system, &[("authz", &authz("example.org/ns/shop/sa/web"))]);
        assert_eq!(envoy.send(bearer(&system.token())).status(), Some(200), "{}", envoy.log_text());
        let identity = caller(layout, &envoy.send(bearer(&system.token())));
        assert_eq!(identity["spiffe_id"], "spiffe://example.org/ns/shop/sa/web");
        let mut envoy = envoy_in(layout, &system, &[("authz", &authz("example.org/ns/shop/sa/admin"))]);
        assert_eq!(envoy.send(bearer(&system.token())).status(), Some(403));
    }
}

#[test]
fn cognito_another_client_or_an_id_token_is_refused() {
    let mut system = cognito();
    system.claims["client_id"] = json!("7a8b9c0d1e2f3g4h5i6j7k8l9m");
    refused_for(&system, &system.token(), "client_mismatch");
    // Cognito's ID token: `aud` is the client, no `client_id`, `token_use` `id`.
    let mut system = cognito();
    let claims = system.claims.as_object_mut().unwrap();
    claims.remove("client_id");
    claims.insert("aud".into(), json!("4k2v6p2clsqu8r3vaq0f4tt0lm"));
    claims.insert("token_use".into(), json!("id"));
    refused_for(&system, &system.token(), "client_mismatch");
}

#[test]
fn entra_multi_tenant_a_tenant_not_listed_or_a_tid_of_another_is_refused() {
    let mut system = entra_multi_tenant();
    let stranger = "11111111-2222-4333-8444-555555555555";
    system.claims["iss"] = json!(format!("https://login.microsoftonline.com/{stranger}/v2.0"));
    system.claims["tid"] = json!(stranger);
    refused_for(&system, &system.token(), "unknown_issuer");
    let mut system = entra_multi_tenant();
    system.claims["tid"] = json!(OTHER_TENANT);
    refused_for(&system, &system.token(), "tenant_mismatch");
    let mut system = entra_multi_tenant();
    system.claims["iss"] = json!(format!("https://login.microsoftonline.com/{OTHER_TENANT}/v2.0"));
    system.claims["tid"] = json!(OTHER_TENANT);
    let mut envoy = envoy_for(&system);
    assert_eq!(envoy.send(bearer(&system.token())).status(), Some(200), "the other listed tenant");
}

#[test]
fn float_clock_an_expired_fractional_date_is_refused() {
    let mut system = float_clock();
    // Expired half a second before the skew ends.
    system.claims["exp"] = json!(NOW as f64 - 60.5);
    system.claims["iat"] = json!(NOW as f64 - 600.5);
    system.claims["nbf"] = json!(NOW as f64 - 600.5);
    refused_for(&system, &system.token(), "expired");
}

// ---------------------------------------------------------------------------------------------
// Scopes and roles, read by zt-authz where each system puts them.

/// One policy on every route: the caller must hold `required`, read from `scope_claim`
/// (default: the identity's scopes).
fn authz_config(scope_claim: Option<Value>, required: &str) -> Value {
    let mut config = json!({
        "realm": "api",
        "policies": {"needs": {"action": "ALLOW", "rules": [{"when": [{"scopes": {"all_of": [required]}}]}]}},
        "defaults": {"policies": ["needs"]},
    });
    if let Some(claim) = scope_claim {
        config["scope_claim"] = claim;
    }
    config
}

/// The token is allowed where it holds `held` (200) and refused with 403 `insufficient_scope`
/// where the policy needs `lacking`.
fn authorizes(system: System, scope_claim: Option<Value>, held: &str, lacking: &str) {
    let token = system.token();
    for layout in Layout::ALL {
        let mut envoy = envoy_in(layout, &system, &[("authz", &authz_config(scope_claim.clone(), held))]);
        let exchange = envoy.send(bearer(&token));
        assert_eq!(exchange.status(), Some(200), "{layout:?} {}: needs {held}\n{}", system.name(), envoy.log_text());

        let mut envoy = envoy_in(layout, &system, &[("authz", &authz_config(scope_claim.clone(), lacking))]);
        let exchange = envoy.send(bearer(&token));
        assert_eq!(exchange.status(), Some(403), "{layout:?} {}: needs {lacking}", system.name());
        assert_eq!(
            exchange.local_reply().unwrap().header("www-authenticate"),
            Some(format!(r#"Bearer realm="api", error="insufficient_scope", scope="{lacking}""#).as_str())
        );
        assert_eq!(layout.decision(&exchange, "authz").unwrap()["reason"], "scope_missing");
    }
}

#[test]
fn keycloak_scope_string_by_default() {
    authorizes(keycloak(), None, "orders:read", "orders:write");
}

#[test]
fn keycloak_realm_roles_at_realm_access_roles() {
    authorizes(keycloak(), Some(json!(["realm_access", "roles"])), "orders-reader", "orders-admin");
}

#[test]
fn keycloak_client_roles_at_resource_access_client_roles() {
    authorizes(keycloak(), Some(json!("resource_access.orders-api.roles")), "orders-viewer", "orders-editor");
}

#[test]
fn entra_v1_scp_string_by_default() {
    authorizes(entra_v1(), None, "Orders.Read", "Orders.Write");
}

#[test]
fn entra_v1_scp_string_at_scope_claim_scp() {
    authorizes(entra_v1(), Some(json!("scp")), "Orders.Read", "Orders.Write");
}

#[test]
fn entra_v1_roles() {
    authorizes(entra_v1(), Some(json!("roles")), "Orders.Approve", "Orders.Admin");
}

#[test]
fn entra_v2_scp_string_by_default() {
    authorizes(entra_v2(), None, "Orders.Read", "Orders.Write");
}

#[test]
fn entra_v2_scp_string_at_scope_claim_scp() {
    authorizes(entra_v2(), Some(json!("scp")), "User.Read", "Orders.Write");
}

#[test]
fn entra_v2_roles() {
    authorizes(entra_v2(), Some(json!("roles")), "Orders.Approve", "Orders.Admin");
}

#[test]
fn auth0_scope_string_by_default() {
    authorizes(auth0(), None, "read:orders", "delete:orders");
}

#[test]
fn auth0_permissions() {
    authorizes(auth0(), Some(json!("permissions")), "create:orders", "delete:orders");
}

#[test]
fn okta_scp_array_by_default() {
    authorizes(okta(), None, "orders.read", "orders.write");
}

#[test]
fn dex_groups() {
    authorizes(dex(), Some(json!("groups")), "shop:orders-admins", "shop:finance");
}

// ---------------------------------------------------------------------------------------------
// Systems whose tokens carry no scopes: authorization on their own claims.

/// The token is allowed by a policy whose condition `holds` for its claims (200) and refused by
/// one whose condition `fails` (403, no policy matched).
fn authorizes_on(system: System, holds: Value, fails: Value) {
    let config = |condition: Value| {
        json!({"realm": "api", "policies": {"on-claims": {"action": "ALLOW", "rules": [{"when": [condition]}]}},
            "defaults": {"policies": ["on-claims"]}})
    };
    let token = system.token();
    for layout in Layout::ALL {
        let mut envoy = envoy_in(layout, &system, &[("authz", &config(holds.clone()))]);
        let exchange = envoy.send(bearer(&token));
        assert_eq!(exchange.status(), Some(200), "{layout:?} {}: {}", system.name(), envoy.log_text());

        let mut envoy = envoy_in(layout, &system, &[("authz", &config(fails.clone()))]);
        let exchange = envoy.send(bearer(&token));
        assert_eq!(exchange.status(), Some(403), "{layout:?} {}", system.name());
        assert_eq!(layout.decision(&exchange, "authz").unwrap()["decision"], "deny");
    }
}

fn claim_equals(path: Value, value: &str) -> Value {
    json!({"claim": {"path": path, "equals": value}})
}

#[test]
fn github_actions_repository_ref_and_workflow() {
    let workflow = "shop/orders/.github/workflows/deploy.yml@refs/heads/main";
    let deploy = |repository: &str| {
        json!({"all": [
            claim_equals(json!("repository"), repository),
            claim_equals(json!("ref"), "refs/heads/main"),
            claim_equals(json!("job_workflow_ref"), workflow),
        ]})
    };
    authorizes_on(github_actions(), deploy("shop/orders"), deploy("shop/payments"));
}

#[test]
fn kubernetes_namespace_and_service_account_under_the_kubernetes_io_claim() {
    // `kubernetes.io` has a dot in its name: the path must be given as segments.
    let workload = |namespace: &str| {
        json!({"all": [
            claim_equals(json!(["kubernetes.io", "namespace"]), namespace),
            claim_equals(json!(["kubernetes.io", "serviceaccount", "name"]), "checkout"),
        ]})
    };
    authorizes_on(kubernetes(), workload("shop"), workload("billing"));
}

#[test]
fn kubernetes_a_dotted_path_through_kubernetes_io_finds_nothing() {
    // `kubernetes.io.namespace` is read as `kubernetes` → `io` → `namespace`: absent, so denied.
    let segments = claim_equals(json!(["kubernetes.io", "namespace"]), "shop");
    let dotted = claim_equals(json!("kubernetes.io.namespace"), "shop");
    authorizes_on(kubernetes(), segments, dotted);
}

#[test]
fn google_hosted_domain() {
    authorizes_on(google(), claim_equals(json!("hd"), "shop.example"), claim_equals(json!("hd"), "other.example"));
}

#[test]
fn google_an_unverified_email_fails_the_required_claim() {
    let mut system = google();
    system.claims["email_verified"] = json!(false);
    let mut envoy = envoy_for(&system);
    assert_eq!(envoy.send(bearer(&system.token())).status(), Some(401));
    assert_eq!(envoy.metric("zt_jwt.denied.required_claim"), Some(1), "{}", envoy.log_text());
}

/// Google documents `iss` as `https://accounts.google.com` or `accounts.google.com`. Issuers
/// match exactly, so the second spelling is a second provider reading the same keys (a
/// discovery document needs an `http(s)` issuer, so its keys are configured directly).
#[test]
fn google_the_issuer_without_scheme_is_a_second_provider() {
    let mut system = google();
    let mut bare = system.provider.clone();
    bare["name"] = json!("google-bare-issuer");
    bare["issuer"] = json!("accounts.google.com");
    bare["jwks"] = json!({"remote": {"cluster": "googleapis", "uri": "https://www.googleapis.com/oauth2/v3/certs"}});
    let mut envoy = Harness::new();
    envoy.clock().set_unix_seconds(NOW);
    for (cluster, path, body) in &system.served {
        envoy.script_http_path(cluster, path, ScriptedResponse::ok(body.to_string()));
    }
    let config = json!({"realm": "api", "providers": [system.provider, bare]});
    envoy.load(FilterSpec::new("zt_jwt", config.to_string())).unwrap();
    envoy.advance(StdDuration::from_millis(200)).unwrap();
    for (issuer, provider) in [("https://accounts.google.com", "google"), ("accounts.google.com", "google-bare-issuer")]
    {
        system.claims["iss"] = json!(issuer);
        let exchange = envoy.send(bearer(&system.token()));
        assert_eq!(exchange.status(), Some(200), "{issuer}: {}", envoy.log_text());
        assert_eq!(identity(&exchange)["provider"], provider);
    }
}

#[test]
fn keycloak_the_encryption_key_in_the_certs_is_skipped_not_fatal() {
    let system = keycloak();
    let mut envoy = envoy_for(&system);
    let log = envoy.log_text();
    let line = "provider keycloak: 1 key(s) from sso.shop.example/realms/shop/protocol/openid-connect/certs \
                via cluster keycloak (1 unusable skipped)";
    assert!(log.contains(line), "{log}");
    assert!(envoy.send(bearer(&system.token())).reached_upstream());
}

/// The token every pod gets by default (the `kube-api-access` volume) is for the API server:
/// its audience is the API server's, and with `--service-account-extend-token-expiration` (on
/// by default) it lives a year, with `kubernetes.io.warnafter` at the requested hour. The
/// lifetime cap refuses it before its audience is read: an API takes a projected token with
/// its own audience.
#[test]
fn kubernetes_the_default_pod_token_lives_a_year_and_is_refused() {
    let mut system = kubernetes();
    system.claims["aud"] = json!(["https://kubernetes.default.svc.cluster.local"]);
    system.claims["exp"] = json!(ISSUED + 31_536_000);
    system.claims["kubernetes.io"]["warnafter"] = json!(ISSUED + 3607);
    let mut envoy = envoy_for(&system);
    assert_eq!(envoy.send(bearer(&system.token())).status(), Some(401));
    assert_eq!(envoy.metric("zt_jwt.denied.lifetime_too_long"), Some(1), "{}", envoy.log_text());
}
