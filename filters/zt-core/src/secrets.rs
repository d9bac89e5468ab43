//! Secrets out of the plugin configuration. Envoy shows a plugin's configuration on its admin
//! interface (`/config_dump`) and Istio keeps it in the `WasmPlugin` resource, readable by whoever
//! can read either. So every secret field may instead name an environment variable of the Wasm VM,
//! `{"env": "NAME"}` (Envoy: `vm_config.environment_variables.host_env_keys` passes the proxy's
//! own variable, which a Kubernetes Secret can fill; Istio: `vmConfig.env` with `valueFrom: HOST`).
//! The reference is replaced by the value before the filter's parser runs, so each parser checks
//! the secret exactly as it checks an inline one, and errors name the field.
//!
//! The secret fields:
//! - zt-jwt: `providers[*].hmac_keys[*].secret` (HS* verification keys), `next_hop.signing_key`
//!   (the variable holds the private JWK's JSON);
//! - zt-audit: `identity.hash_key`, `collector.headers.*` (a collector's API key);
//! - zt-suite: the same under its `jwt` and `audit` sections.
//!
//! (The audit chain key is only ever read from the environment: `chain_key.env`.)

use serde_json::Value;

use crate::ConfigError;

/// Which filter's configuration this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretScope {
    Jwt,
    Audit,
    Suite,
}

/// What a secret field holds, so that a caller without the real value (an offline check) can
/// stand in a value of the right shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// An HMAC verification secret, base64url.
    HmacSecret,
    /// A private JWK, as JSON text.
    SigningKey,
    /// The audit pseudonym key.
    HashKey,
    /// A request header value sent to the collector.
    HeaderValue,
}

/// A secret field: its path, whose `*` is every array element or map member, and its kind.
type SecretField = (&'static [&'static str], SecretKind);

/// The secret fields of each filter.
const JWT_SECRETS: [SecretField; 2] = [
    (&["providers", "*", "hmac_keys", "*", "secret"], SecretKind::HmacSecret),
    (&["next_hop", "signing_key"], SecretKind::SigningKey),
];
const AUDIT_SECRETS: [SecretField; 2] =
    [(&["identity", "hash_key"], SecretKind::HashKey), (&["collector", "headers", "*"], SecretKind::HeaderValue)];

/// Replaces every `{"env": "NAME"}` in a secret field of `config` by what `lookup` answers for
/// it; `None` is the variable missing from the VM, an error naming the field. Other values are
/// left as they are, for the filter's parser to judge. Answers whether anything was replaced.
pub fn resolve_env(
    config: &mut Value,
    scope: SecretScope,
    lookup: &dyn Fn(&str, SecretKind) -> Option<String>,
) -> Result<bool, ConfigError> {
    let replaced = std::cell::Cell::new(false);
    let counting = |name: &str, kind: SecretKind| {
        replaced.set(true);
        lookup(name, kind)
    };
    let sections: &[(Option<&str>, &[SecretField])] = match scope {
        SecretScope::Jwt => &[(None, &JWT_SECRETS)],
        SecretScope::Audit => &[(None, &AUDIT_SECRETS)],
        SecretScope::Suite => &[(Some("jwt"), &JWT_SECRETS), (Some("audit"), &AUDIT_SECRETS)],
    };
    for (section, fields) in sections {
        let (root, prefix) = match section {
            Some(name) => match config.get_mut(*name) {
                Some(root) => (root, (*name).to_owned()),
                None => continue,
            },
            None => (&mut *config, String::new()),
        };
        for (path, kind) in *fields {
            resolve_at(root, path, &prefix, *kind, &counting)?;
        }
    }
    Ok(replaced.get())
}

fn resolve_at(
    value: &mut Value,
    path: &[&str],
    at: &str,
    kind: SecretKind,
    lookup: &dyn Fn(&str, SecretKind) -> Option<String>,
) -> Result<(), ConfigError> {
    let Some((first, rest)) = path.split_first() else { return resolve_here(value, at, kind, lookup) };
    let join = |step: String| if at.is_empty() { step } else { format!("{at}.{step}") };
    match (value, *first) {
        (Value::Array(items), "*") => {
            for (i, item) in items.iter_mut().enumerate() {
                resolve_at(item, rest, &format!("{at}[{i}]"), kind, lookup)?;
            }
        }
        (Value::Object(members), "*") => {
            for (name, item) in members.iter_mut() {
                resolve_at(item, rest, &join(name.clone()), kind, lookup)?;
            }
        }
        (Value::Object(members), name) => {
            if let Some(item) = members.get_mut(name) {
                resolve_at(item, rest, &join(name.to_owned()), kind, lookup)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn resolve_here(
    value: &mut Value,
    at: &str,
    kind: SecretKind,
    lookup: &dyn Fn(&str, SecretKind) -> Option<String>,
) -> Result<(), ConfigError> {
    let Some(name) = env_reference(value) else { return Ok(()) };
    let secret = lookup(&name, kind).ok_or_else(|| {
        ConfigError::new(format!("{at}.env"), format!("the environment variable {name} is not set in the Wasm VM"))
    })?;
    *value = match kind {
        // The error never quotes the variable's value: it is a private key.
        SecretKind::SigningKey => serde_json::from_str(&secret)
            .map_err(|_| ConfigError::new(format!("{at}.env"), format!("{name} does not hold a JSON Web Key")))?,
        _ => Value::String(secret),
    };
    Ok(())
}

/// `{"env": "NAME"}` and nothing else.
fn env_reference(value: &Value) -> Option<String> {
    let object = value.as_object().filter(|object| object.len() == 1)?;
    object.get("env").and_then(Value::as_str).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn env(name: &str, _: SecretKind) -> Option<String> {
        match name {
            "ZT_HMAC" => Some("c2VjcmV0".to_owned()),
            "ZT_JWK" => Some(r#"{"kty":"OKP","crv":"Ed25519","kid":"k","d":"x","x":"y"}"#.to_owned()),
            "ZT_API" => Some("api-key".to_owned()),
            _ => None,
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn references_in_secret_fields_are_replaced_by_the_variables() {
        let mut config = json!({
            "jwt": {"providers": [{"name": "a"}, {"name": "b", "hmac_keys": [{"alg": "HS256", "secret": {"env": "ZT_HMAC"}}]}],
                    "next_hop": {"signing_key": {"env": "ZT_JWK"}}},
            "audit": {"collector": {"cluster": "otel", "headers": {"x-api-key": {"env": "ZT_API"}, "x-plain": "v"}}},
        });
        assert!(resolve_env(&mut config, SecretScope::Suite, &env).unwrap());
        assert_eq!(config["jwt"]["providers"][1]["hmac_keys"][0]["secret"], "c2VjcmV0");
        assert_eq!(config["jwt"]["next_hop"]["signing_key"]["kid"], "k", "the JWK's JSON");
        assert_eq!(config["audit"]["collector"]["headers"], json!({"x-api-key": "api-key", "x-plain": "v"}));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_missing_variable_names_the_field_and_elsewhere_nothing_is_replaced() {
        let mut config = json!({"providers": [{"hmac_keys": [{"alg": "HS256", "secret": {"env": "ZT_NONE"}}]}]});
        let err = resolve_env(&mut config, SecretScope::Jwt, &env).unwrap_err();
        assert_eq!(err.path, "providers[0].hmac_keys[0].secret.env");
        assert!(err.message.contains("ZT_NONE"), "{err}");
        // Not a secret field: left for the parser, which refuses an object there.
        let mut config = json!({"realm": {"env": "ZT_API"}});
        assert!(!resolve_env(&mut config, SecretScope::Jwt, &env).unwrap(), "nothing replaced");
        assert_eq!(config["realm"], json!({"env": "ZT_API"}));
        let mut config = json!({"identity": {"hash_key": {"env": "ZT_API"}}});
        resolve_env(&mut config, SecretScope::Audit, &env).unwrap();
        assert_eq!(config["identity"]["hash_key"], "api-key");
        let mut config = json!({"next_hop": {"signing_key": {"env": "ZT_API"}}});
        let err = resolve_env(&mut config, SecretScope::Jwt, &env).unwrap_err();
        assert!(!err.to_string().contains("api-key"), "never the value: {err}");
    }
}
