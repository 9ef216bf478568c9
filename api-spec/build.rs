//! Generates the client from `openapi.yaml` with progenitor, so the spec and the client cannot
//! drift. Left out, because progenitor cannot express them: the operation whose answer is not
//! JSON (the HTML sign-in form), and the `tag.KEY=VALUE` filters (a `deepObject` parameter;
//! [`crate::Client::with_tags`] adds them to a client's requests), the form variant of bodies that are also JSON,
//! redirects (for browsers), and the distinction between several success answers of one
//! operation (progenitor allows one type: they become one `2XX` answer of any JSON).

use std::path::Path;

fn main() {
    let spec_path = Path::new("openapi.yaml");
    println!("cargo:rerun-if-changed={}", spec_path.display());
    let text = std::fs::read_to_string(spec_path).expect("read openapi.yaml");
    let mut value: serde_json::Value = serde_yaml::from_str(&text).expect("openapi.yaml is YAML");
    if let Some(login) = value.pointer_mut("/paths/~1login") {
        if let Some(item) = login.as_object_mut() {
            item.remove("get");
        }
    }
    drop_deep_object_parameters(&mut value);
    keep_only_json_request_bodies(&mut value);
    one_success_response(&mut value);
    // typify drops the fields an object allows (`additionalProperties: true`) but does not
    // list: a state's fields depend on its type, so the client keeps them all as JSON.
    if let Some(state) = value.pointer_mut("/components/schemas/SLState") {
        *state = serde_json::json!({"type": "object", "additionalProperties": {}});
    }
    let spec: openapiv3::OpenAPI =
        serde_json::from_value(value).expect("openapi.yaml is OpenAPI 3.0");
    let mut settings = progenitor::GenerationSettings::default();
    settings
        .with_interface(progenitor::InterfaceStyle::Builder)
        .with_inner_type(quote::quote!(crate::RequestExtras))
        .with_pre_hook(quote::quote!(crate::apply_extras))
        // The server's order of keys (states, tags) is kept.
        .with_map_type("::indexmap::IndexMap");
    let mut generator = progenitor::Generator::new(&settings);
    let tokens = generator
        .generate_tokens(&spec)
        .expect("progenitor generates the client");
    let ast = syn::parse2(tokens).expect("generated code parses");
    let code = prettyplease::unparse(&ast);
    let out = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("client.rs");
    std::fs::write(out, code).expect("write client.rs");
}

/// Removes, from every operation, the parameters (by reference) whose style is `deepObject`.
fn drop_deep_object_parameters(spec: &mut serde_json::Value) {
    let deep: Vec<String> = spec
        .pointer("/components/parameters")
        .and_then(|p| p.as_object())
        .map(|params| {
            params
                .iter()
                .filter(|(_, p)| p["style"] == "deepObject")
                .map(|(name, _)| format!("#/components/parameters/{name}"))
                .collect()
        })
        .unwrap_or_default();
    for_each_operation(spec, |op| {
        if let Some(params) = op.get_mut("parameters").and_then(|p| p.as_array_mut()) {
            params.retain(|p| {
                p["$ref"]
                    .as_str()
                    .is_none_or(|r| !deep.iter().any(|d| d == r))
                    && p["style"] != "deepObject"
            });
        }
    });
}

/// Keeps only `application/json` in request bodies that offer it among several media types.
fn keep_only_json_request_bodies(spec: &mut serde_json::Value) {
    for_each_operation(spec, |op| {
        if let Some(content) = op
            .pointer_mut("/requestBody/content")
            .and_then(|c| c.as_object_mut())
        {
            if content.len() > 1 && content.contains_key("application/json") {
                content.retain(|media, _| media == "application/json");
            }
        }
    });
}

/// Leaves each operation one success answer: redirects go, and several JSON successes become
/// one `2XX` answer of any JSON.
fn one_success_response(spec: &mut serde_json::Value) {
    for_each_operation(spec, |op| {
        let Some(responses) = op.get_mut("responses").and_then(|r| r.as_object_mut()) else {
            return;
        };
        responses.retain(|code, _| !code.starts_with('3'));
        let successes: Vec<String> = responses
            .keys()
            .filter(|code| code.starts_with('2'))
            .cloned()
            .collect();
        if successes.len() > 1 {
            for code in &successes {
                responses.remove(code);
            }
            responses.insert(
                "2XX".into(),
                serde_json::json!({
                    "description": "success",
                    "content": {"application/json": {"schema": {}}}
                }),
            );
        }
    });
}

/// Runs `f` on every operation of the spec.
fn for_each_operation(spec: &mut serde_json::Value, mut f: impl FnMut(&mut serde_json::Value)) {
    let Some(paths) = spec.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return;
    };
    for item in paths.values_mut() {
        if let Some(item) = item.as_object_mut() {
            item.values_mut().for_each(&mut f);
        }
    }
}
