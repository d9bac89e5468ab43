//! Renders the Envoy configuration templates of `envoy/configs/`.
//!
//! Placeholders: `{{LISTENER_PORT}}`, `{{ADMIN_PORT}}`, `{{UPSTREAM_PORT}}`, `{{IDP_PORT}}`, `{{WASM_DIR}}` (the
//! template names its module file after it) and `{{PLUGIN_CONFIG}}` (the plugin's JSON, rendered
//! as one quoted YAML scalar). A placeholder left over is an error, never an empty string.

use std::path::Path;

use crate::BedError;
use crate::paths::configs_dir;

/// Ports to render; 0 lets the kernel choose (the bed then asks Envoy's admin which it got).
#[derive(Clone, Copy, Debug, Default)]
pub struct Ports {
    pub listener: u16,
    pub admin: u16,
    pub upstream: u16,
    /// The identity provider's port (`{{IDP_PORT}}`), for templates that fetch keys.
    pub idp: u16,
}

/// The text of one template of `envoy/configs`.
pub fn template(name: &str) -> Result<String, BedError> {
    let path = configs_dir().join(name);
    std::fs::read_to_string(&path).map_err(BedError::io(format!("read template {}", path.display())))
}

/// Fills a template. Every module it names under `{{WASM_DIR}}` must exist in `wasm_dir`.
pub fn render(template: &str, ports: Ports, wasm_dir: &Path, plugin_config: &str) -> Result<String, BedError> {
    render_with(template, ports, wasm_dir, plugin_config, &[])
}

/// [`render`], with more placeholders: each `(NAME, text)` replaces `{{NAME}}` verbatim (quote
/// JSON with [`yaml_string`]).
pub fn render_with(
    template: &str,
    ports: Ports,
    wasm_dir: &Path,
    plugin_config: &str,
    extra: &[(&str, String)],
) -> Result<String, BedError> {
    let mut template = template.to_owned();
    for (name, value) in extra {
        template = template.replace(&format!("{{{{{name}}}}}"), value);
    }
    let template = template.as_str();
    let dir = wasm_dir
        .to_str()
        .filter(|d| !d.contains(['"', '\\', '\n', '{']))
        .ok_or_else(|| BedError::Template(format!("unusable wasm directory {}", wasm_dir.display())))?;
    for module in named_modules(template) {
        wasm_module_in(wasm_dir, module)?;
    }
    let plugin = yaml_string(plugin_config);
    let text = template
        .replace("{{LISTENER_PORT}}", &ports.listener.to_string())
        .replace("{{ADMIN_PORT}}", &ports.admin.to_string())
        .replace("{{UPSTREAM_PORT}}", &ports.upstream.to_string())
        .replace("{{IDP_PORT}}", &ports.idp.to_string())
        .replace("{{WASM_DIR}}", dir)
        .replace("{{PLUGIN_CONFIG}}", &plugin);
    match text.lines().find(|line| line.contains("{{")) {
        Some(line) => Err(BedError::Template(format!("placeholder without a value: {}", line.trim()))),
        None => Ok(text),
    }
}

/// Text as one YAML double-quoted scalar (a JSON string literal is one).
pub fn yaml_string(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

/// The module file names that follow `{{WASM_DIR}}/` in a template.
fn named_modules(template: &str) -> impl Iterator<Item = &str> {
    template.split("{{WASM_DIR}}/").skip(1).filter_map(|rest| rest.split(['"', '\n', ' ', '}']).next())
}

fn wasm_module_in(dir: &Path, file: &str) -> Result<(), BedError> {
    let path = dir.join(file);
    if path.is_file() {
        Ok(())
    } else {
        Err(BedError::Missing { path, hint: "build the modules first: make build build-fixtures" })
    }
}

/// A Wasm filter as the shipped configurations declare it (`FAIL_CLOSED`, V8, its own VM),
/// its plugin configuration left as the placeholder `config` for `render` to fill.
pub(crate) fn wasm_filter(name: &str, module: &str, config: &str) -> String {
    format!(
        r#"          - name: {name}
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: {name}
                root_id: {name}
                failure_policy: FAIL_CLOSED
                vm_config:
                  vm_id: {name}
                  runtime: envoy.wasm.runtime.v8
                  code: {{ local: {{ filename: "{{{{WASM_DIR}}}}/{module}" }} }}
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: {config}
"#
    )
}

/// A single-filter template (`jwt-oidc.yaml`, `ratelimit.yaml`) with the suite in place of its
/// zt filters: everything from the first `zt-` HTTP filter up to the router becomes one
/// `zt-suite` filter configured by `{{SUITE_CONFIG}}`, and the routes' per-filter
/// configurations of the replaced filters (`disabled: true`) apply to the suite.
pub fn with_the_suite(template: &str) -> Result<String, BedError> {
    const FILTER: &str = "          - name: ";
    let missing = || BedError::Template("no zt filters before the router to replace".to_owned());
    let start = template.find(&format!("{FILTER}zt-")).ok_or_else(missing)?;
    let end = template.find(&format!("{FILTER}envoy.filters.http.router\n")).ok_or_else(missing)?;
    let replaced = template.get(start..end).ok_or_else(missing)?;
    let names: Vec<&str> = replaced.lines().filter_map(|line| line.strip_prefix(FILTER)).collect();
    let suite = wasm_filter("zt-suite", "zt_suite.wasm", "{{SUITE_CONFIG}}");
    let mut text =
        format!("{}{suite}{}", template.get(..start).ok_or_else(missing)?, template.get(end..).ok_or_else(missing)?);
    for name in names {
        text = text.replace(&format!(" {name}: "), " zt-suite: ").replace(&format!(" {name}:\n"), " zt-suite:\n");
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_every_placeholder_and_quotes_the_plugin_config() {
        let t = "a: {{LISTENER_PORT}} {{ADMIN_PORT}} {{UPSTREAM_PORT}}\nv: {{PLUGIN_CONFIG}}\n";
        let out =
            render(t, Ports { listener: 1, admin: 2, upstream: 3, idp: 4 }, Path::new("/w"), r#"{"a":"b"}"#).unwrap();
        assert_eq!(out, "a: 1 2 3\nv: \"{\\\"a\\\":\\\"b\\\"}\"\n");
    }

    #[test]
    fn refuses_an_unknown_placeholder_and_a_missing_module() {
        assert!(matches!(render("{{NOPE}}", Ports::default(), Path::new("/w"), ""), Err(BedError::Template(_))));
        let missing = render("f: {{WASM_DIR}}/none.wasm", Ports::default(), Path::new("/nonexistent"), "");
        assert!(matches!(missing, Err(BedError::Missing { .. })), "{missing:?}");
    }
}
