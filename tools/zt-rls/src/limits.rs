//! The limits file: Limitador's own format, read as limitador-server reads it (a YAML list of
//! `limitador::limit::Limit`, parsed with serde_yaml 0.9), with checks that limitador-server does
//! not make, each an error naming the entry, so that every file accepted here means the same to
//! limitador-server:
//!
//! - a key limitador does not know (`limits[1]: unknown key "condition"`): limitador-server drops
//!   it silently;
//! - a missing `max_value`: limitador-server takes 0 and limits every request;
//! - two limits with the same identity (namespace, seconds, conditions and variables: what
//!   limitador compares): limitador-server keeps only one of them.
//!
//! The keys of one limit, as limitador 0.14 deserializes them:
//!
//! | key          | type                    | default when absent                        |
//! | ------------ | ----------------------- | ------------------------------------------ |
//! | `namespace`  | string                  | required: the RLS request's `domain`       |
//! | `max_value`  | integer                 | required here (limitador: 0, every request limited) |
//! | `seconds`    | integer                 | required: the window                       |
//! | `name`       | string                  | none (the status' `current_limit.name` is empty) |
//! | `id`         | string                  | none                                       |
//! | `conditions` | list of CEL predicates  | required (may be `[]`): all must hold      |
//! | `variables`  | list of CEL expressions | required (may be `[]`): one counter per distinct value |
//!
//! Reads a string; never touches files or storage.

use std::collections::HashMap;

use limitador::limit::Limit;

use crate::Error;

/// The keys limitador 0.14's `Limit` deserializes.
const KNOWN_KEYS: [&str; 7] = ["id", "namespace", "max_value", "seconds", "name", "conditions", "variables"];

/// Parses a limits file's text. An empty list is allowed (every request is then `OK`).
pub fn parse_limits(yaml: &str) -> Result<Vec<Limit>, Error> {
    let entries: Vec<serde_yaml::Value> =
        serde_yaml::from_str(yaml).map_err(|e| Error::LimitsInvalid(format!("not a YAML list of limits: {e}")))?;
    let mut limits = Vec::with_capacity(entries.len());
    for (index, entry) in entries.into_iter().enumerate() {
        let serde_yaml::Value::Mapping(mapping) = &entry else {
            return Err(Error::LimitsInvalid(format!("limits[{index}]: must be a mapping")));
        };
        if !mapping.contains_key("max_value") {
            return Err(Error::LimitsInvalid(format!("limits[{index}]: missing field `max_value`")));
        }
        for key in mapping.keys() {
            let known = key.as_str().is_some_and(|key| KNOWN_KEYS.contains(&key));
            if !known {
                let shown = key.as_str().map_or_else(|| format!("{key:?}"), |key| format!("{key:?}"));
                return Err(Error::LimitsInvalid(format!(
                    "limits[{index}]: unknown key {shown} (limitador knows {})",
                    KNOWN_KEYS.join(", ")
                )));
            }
        }
        let limit: Limit =
            serde_yaml::from_value(entry).map_err(|e| Error::LimitsInvalid(format!("limits[{index}]: {e}")))?;
        limits.push(limit);
    }
    let mut seen: HashMap<&Limit, usize> = HashMap::new();
    for (index, limit) in limits.iter().enumerate() {
        if let Some(first) = seen.insert(limit, index) {
            return Err(Error::LimitsInvalid(format!(
                "limits[{index}]: same namespace, seconds, conditions and variables as limits[{first}] \
                 (limitador would keep only one)"
            )));
        }
    }
    Ok(limits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_limitadors_own_example() {
        // limitador-server/examples/limits.yaml (empty `conditions:`/`variables:` are null there).
        let yaml = r#"
---
- namespace: test_namespace
  max_value: 1000000
  seconds: 60
  conditions:
  variables:
- namespace: test_namespace
  max_value: 5
  seconds: 60
  conditions:
    - "descriptors[0]['req.method'] == 'POST'"
  variables:
    - descriptors[0]['user_id']
"#;
        let limits = parse_limits(yaml).unwrap();
        assert_eq!(limits.len(), 2);
        assert_eq!(limits[1].max_value(), 5);
        assert_eq!(limits[1].seconds(), 60);
        assert!(limits[1].conditions().contains("descriptors[0]['req.method'] == 'POST'"));
        assert!(limits[1].variables().contains("descriptors[0]['user_id']"));
    }

    #[test]
    fn names_are_kept() {
        let yaml = "- {namespace: ns, name: per-user, max_value: 3, seconds: 1, conditions: [], variables: []}";
        let limits = parse_limits(yaml).unwrap();
        assert_eq!(limits[0].name(), Some("per-user"));
    }

    #[test]
    fn rejects_what_limitador_would_misread() {
        let table = [
            (
                "- {namespace: ns, max_value: 3, seconds: 1, condition: [], variables: []}",
                r#"limits[0]: unknown key "condition""#,
            ),
            ("- {max_value: 3, seconds: 1, conditions: [], variables: []}", "limits[0]: missing field `namespace`"),
            ("- {namespace: ns, max_value: 3, seconds: 1, conditions: ['('], variables: []}", "limits[0]"),
            ("- just a string", "limits[0]: must be a mapping"),
            ("- {namespace: ns, seconds: 1, conditions: [], variables: []}", "limits[0]: missing field `max_value`"),
            ("- {namespace: ns, max_value: 3, conditions: [], variables: []}", "limits[0]: missing field `seconds`"),
            ("- {namespace: ns, max_value: 3, seconds: 1, variables: []}", "limits[0]: missing field `conditions`"),
            ("namespace: ns", "not a YAML list"),
            (
                "- {namespace: ns, max_value: 3, seconds: 1, conditions: [], variables: []}\n\
                 - {namespace: ns, max_value: 5, seconds: 1, conditions: [], variables: []}",
                "limits[1]: same namespace, seconds, conditions and variables as limits[0]",
            ),
        ];
        for (yaml, expected) in table {
            let error = parse_limits(yaml).unwrap_err().to_string();
            assert!(error.contains(expected), "{yaml}: {error}");
        }
    }

    #[test]
    fn an_empty_list_is_allowed() {
        assert!(parse_limits("[]").unwrap().is_empty());
    }
}
