//! The HTTP Task, `arn:aws:states:::http:invoke`: `ApiEndpoint`, `Method`, `Headers`,
//! `QueryParameters`, `RequestBody`, `Transform` (URL-encoded bodies with the array formats
//! Step Functions has); the result `StatusCode`, `StatusText`, `Headers`, `ResponseBody`; a
//! non-2xx answer fails as `States.Http.StatusCode.NNN`. `Authentication.ConnectionArn`
//! names a connection: locally, one of `connections.yaml` in the definitions directory (an API
//! key, basic credentials, and headers or query parameters to add), matched by the name in
//! the connection's ARN. Which hosts a Task may reach is limited by [`HttpPolicy`].

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Map, Value};
use wfm_engine::integrations::{IntegrationFailure, ServiceIntegration, Submitted};

use crate::failure::{bad_parameter, failure};

const RESOURCE: &str = "arn:aws:states:::http:invoke";

/// A connection's credentials and parameters.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Connection {
    /// The name (the `connection/NAME/...` part of its ARN).
    pub name: String,
    /// `API_KEY` authorization: a header with a value.
    #[serde(default)]
    pub api_key: Option<ApiKey>,
    /// `BASIC` authorization.
    #[serde(default)]
    pub basic: Option<Basic>,
    /// Headers added to every request.
    #[serde(default)]
    pub headers: HashMap<String, String>,
    /// Query parameters added to every request.
    #[serde(default)]
    pub query: HashMap<String, String>,
}

/// An API key header.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    /// The header.
    pub name: String,
    /// Its value (`${VAR}` reads an environment variable).
    pub value: String,
}

/// Basic credentials.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Basic {
    /// User name.
    pub username: String,
    /// Password (`${VAR}` reads an environment variable).
    pub password: String,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ConnectionsFile {
    #[serde(default)]
    connections: Vec<Connection>,
}

/// `${VAR}` → the variable's value (empty when unset).
fn expand(value: &str) -> String {
    match value.strip_prefix("${").and_then(|v| v.strip_suffix('}')) {
        Some(var) => std::env::var(var).unwrap_or_default(),
        None => value.to_string(),
    }
}

/// Which hosts HTTP Tasks may reach, and the connections they may name.
#[derive(Debug, Clone, Default)]
pub struct HttpPolicy {
    /// Host names (or `*.suffix`) HTTP Tasks may call; empty: any.
    pub allow: Vec<String>,
    /// Connections by name.
    pub connections: HashMap<String, Connection>,
}

impl HttpPolicy {
    /// Reads `dir/connections.yaml` (none when absent); `allow` as given.
    pub fn load(dir: &Path, allow: Vec<String>) -> Result<Self, String> {
        let path = dir.join("connections.yaml");
        let connections = match std::fs::read_to_string(&path) {
            Ok(text) => {
                let file: ConnectionsFile =
                    serde_yaml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
                file.connections
                    .into_iter()
                    .map(|c| (c.name.clone(), c))
                    .collect()
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => HashMap::new(),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        Ok(Self { allow, connections })
    }

    fn allows(&self, host: &str) -> bool {
        self.allow.is_empty()
            || self.allow.iter().any(|a| match a.strip_prefix("*.") {
                Some(suffix) => host.ends_with(&format!(".{suffix}")) || host == suffix,
                None => a.eq_ignore_ascii_case(host),
            })
    }
}

/// The HTTP Task integration.
pub struct HttpTask {
    http: reqwest::Client,
    policy: Arc<HttpPolicy>,
}

impl HttpTask {
    /// With its policy.
    pub fn new(policy: HttpPolicy) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap_or_default();
        Self {
            http,
            policy: Arc::new(policy),
        }
    }
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A JSON body as `application/x-www-form-urlencoded`, arrays as `format` says.
fn url_encoded(body: &Value, format: &str) -> Result<String, IntegrationFailure> {
    let Value::Object(fields) = body else {
        return Err(bad_parameter(
            "URL_ENCODED request bodies must be JSON objects",
        ));
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (k, v) in fields {
        match v {
            Value::Array(items) => match format {
                "REPEAT" => pairs.extend(items.iter().map(|i| (k.clone(), text_of(i)))),
                "COMMAS" => pairs.push((
                    k.clone(),
                    items.iter().map(text_of).collect::<Vec<_>>().join(","),
                )),
                "BRACKETS" => pairs.extend(items.iter().map(|i| (format!("{k}[]"), text_of(i)))),
                _ => pairs.extend(
                    items
                        .iter()
                        .enumerate()
                        .map(|(n, i)| (format!("{k}[{n}]"), text_of(i))),
                ),
            },
            other => pairs.push((k.clone(), text_of(other))),
        }
    }
    serde_urlencoded_pairs(&pairs)
}

fn serde_urlencoded_pairs(pairs: &[(String, String)]) -> Result<String, IntegrationFailure> {
    let encode = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                b' ' => "+".to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    Ok(pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&"))
}

fn object_of<'a>(
    parameters: &'a Value,
    field: &str,
) -> Result<Option<&'a Map<String, Value>>, IntegrationFailure> {
    match parameters.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(_) => Err(bad_parameter(format!(
            "The field '{field}' must be a JSON object"
        ))),
    }
}

impl HttpTask {
    fn connection(&self, parameters: &Value) -> Result<Option<&Connection>, IntegrationFailure> {
        let Some(arn) = parameters
            .get("Authentication")
            .and_then(|a| a.get("ConnectionArn"))
            .and_then(Value::as_str)
        else {
            return Ok(None);
        };
        let name = arn
            .split_once(":connection/")
            .map(|(_, rest)| rest.split('/').next().unwrap_or(rest))
            .unwrap_or(arn);
        self.policy.connections.get(name).map(Some).ok_or_else(|| {
            failure(
                "States.Runtime",
                format!(
                    "The connection '{name}' ({arn}) is not configured: add it to connections.yaml"
                ),
            )
        })
    }

    async fn call(&self, parameters: &Value) -> Result<Value, IntegrationFailure> {
        let endpoint = parameters
            .get("ApiEndpoint")
            .and_then(Value::as_str)
            .ok_or_else(|| bad_parameter("The field 'ApiEndpoint' is required"))?;
        let method = parameters
            .get("Method")
            .and_then(Value::as_str)
            .ok_or_else(|| bad_parameter("The field 'Method' is required"))?;
        let method = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .map_err(|_| bad_parameter(format!("The method '{method}' is not an HTTP method")))?;
        let mut url = reqwest::Url::parse(endpoint).map_err(|e| {
            bad_parameter(format!("The ApiEndpoint '{endpoint}' is not a URL: {e}"))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad_parameter(format!(
                "The ApiEndpoint '{endpoint}' must be http or https"
            )));
        }
        let host = url.host_str().unwrap_or_default().to_string();
        if !self.policy.allows(&host) {
            return Err(failure(
                "States.Runtime",
                format!("HTTP Tasks may not call '{host}' (see --http-allow)"),
            ));
        }
        let connection = self.connection(parameters)?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(params) = object_of(parameters, "QueryParameters")? {
                for (k, v) in params {
                    q.append_pair(k, &text_of(v));
                }
            }
            if let Some(c) = connection {
                for (k, v) in &c.query {
                    q.append_pair(k, &expand(v));
                }
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        let mut request = self.http.request(method, url);
        let mut has_content_type = false;
        if let Some(headers) = object_of(parameters, "Headers")? {
            for (k, v) in headers {
                has_content_type |= k.eq_ignore_ascii_case("content-type");
                request = request.header(k.as_str(), text_of(v));
            }
        }
        if let Some(c) = connection {
            for (k, v) in &c.headers {
                request = request.header(k.as_str(), expand(v));
            }
            if let Some(k) = &c.api_key {
                request = request.header(k.name.as_str(), expand(&k.value));
            }
            if let Some(b) = &c.basic {
                request = request.basic_auth(&b.username, Some(expand(&b.password)));
            }
        }
        if let Some(body) = parameters.get("RequestBody").filter(|b| !b.is_null()) {
            let transform = parameters.get("Transform");
            let encoding = transform
                .and_then(|t| t.get("RequestBodyEncoding"))
                .and_then(Value::as_str)
                .unwrap_or("NONE");
            if encoding == "URL_ENCODED" {
                let format = transform
                    .and_then(|t| t.get("RequestEncodingOptions"))
                    .and_then(|o| o.get("ArrayFormat"))
                    .and_then(Value::as_str)
                    .unwrap_or("INDICES");
                request = request
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(url_encoded(body, format)?);
            } else {
                if !has_content_type {
                    request = request.header("content-type", "application/json");
                }
                request = request.body(match body {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                });
            }
        }
        let response = request.send().await.map_err(|e| {
            failure(
                "States.Http.Socket",
                format!("The request to '{endpoint}' failed: {e}"),
            )
        })?;
        let status = response.status();
        let mut headers = Map::new();
        for (name, value) in response.headers() {
            let entry = headers
                .entry(name.as_str().to_string())
                .or_insert_with(|| json!([]));
            if let Value::Array(values) = entry {
                values.push(json!(value.to_str().unwrap_or_default()));
            }
        }
        let body = response.text().await.unwrap_or_default();
        let response_body = serde_json::from_str::<Value>(&body).unwrap_or(json!(body));
        let result = json!({
            "Headers": headers,
            "ResponseBody": response_body,
            "StatusCode": status.as_u16(),
            "StatusText": status.canonical_reason().unwrap_or_default(),
        });
        if !status.is_success() {
            return Err(failure(
                format!("States.Http.StatusCode.{}", status.as_u16()),
                result.to_string(),
            ));
        }
        Ok(result)
    }
}

#[async_trait]
impl ServiceIntegration for HttpTask {
    fn resource_type(&self) -> &'static str {
        "http"
    }

    fn handles(&self, resource: &str) -> bool {
        resource == RESOURCE
    }

    fn region(&self) -> String {
        String::new()
    }

    async fn submit(&self, _: &str, parameters: &Value) -> Result<Submitted, IntegrationFailure> {
        Ok(Submitted {
            handle: String::new(),
            output: self.call(parameters).await?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encoded_bodies_follow_the_array_format() {
        let body = json!({"a": [1, 2], "b": "x y"});
        assert_eq!(
            url_encoded(&body, "INDICES").ok().as_deref(),
            Some("a%5B0%5D=1&a%5B1%5D=2&b=x+y")
        );
        assert_eq!(
            url_encoded(&body, "REPEAT").ok().as_deref(),
            Some("a=1&a=2&b=x+y")
        );
        assert_eq!(
            url_encoded(&body, "COMMAS").ok().as_deref(),
            Some("a=1%2C2&b=x+y")
        );
        assert_eq!(
            url_encoded(&body, "BRACKETS").ok().as_deref(),
            Some("a%5B%5D=1&a%5B%5D=2&b=x+y")
        );
    }

    #[test]
    fn the_policy_limits_hosts() {
        let any = HttpPolicy::default();
        assert!(any.allows("example.com"));
        let some = HttpPolicy {
            allow: vec!["127.0.0.1".into(), "*.example.com".into()],
            ..HttpPolicy::default()
        };
        assert!(some.allows("127.0.0.1"));
        assert!(some.allows("api.example.com"));
        assert!(!some.allows("example.org"));
    }
}
