//! The Rust client of the workflow-manager REST API, generated at build time from
//! `api-spec/openapi.yaml` by progenitor (`build.rs` says what it leaves out). Besides the
//! generated code, only what progenitor cannot express: query parameters of dynamic names
//! (`tag.KEY=VALUE` filters), added to every request of a client made by [`Client::with_tags`],
//! and request bodies given as JSON.
//!
//! Calls are builders: `client.get_workflows().status("failed").limit(n).send().await`.

/// The code progenitor generated; its own conventions, not ours.
#[allow(missing_docs, clippy::all, clippy::unwrap_used, unused)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/client.rs"));
}

pub use generated::*;

pub use progenitor_client;
pub use reqwest;

/// Request bodies can also be given as JSON (`.body(json!({...}))`): a body that does not fit
/// the type fails the request with `Error::InvalidRequest`, naming the problem.
macro_rules! bodies_from_json {
    ($($t:ident),*) => {$(
        impl TryFrom<serde_json::Value> for types::$t {
            type Error = serde_json::Error;

            fn try_from(value: serde_json::Value) -> Result<Self, Self::Error> {
                serde_json::from_value(value)
            }
        }
    )*};
}

bodies_from_json!(
    NewWorkflowDefinitionRequest,
    StartWorkflowRequest,
    WorkflowDefinitionOverrides,
    CancelReason,
    RepairRequest,
    NewStateResource,
    LoginBody,
    NewToken,
    NewAccessKey
);

/// Query parameters added to every request of a client.
#[derive(Debug, Clone, Default)]
pub struct RequestExtras {
    /// `(name, value)` pairs appended to the query string.
    pub query: Vec<(String, String)>,
}

/// The pre-request hook: appends the client's extra query parameters.
fn apply_extras(extras: &RequestExtras, request: &mut reqwest::Request) {
    if extras.query.is_empty() {
        return;
    }
    let mut pairs = request.url_mut().query_pairs_mut();
    for (k, v) in &extras.query {
        pairs.append_pair(k, v);
    }
}

impl Client {
    /// A client for `baseurl` (`http://host:port`), without credentials.
    pub fn for_url(baseurl: &str) -> Self {
        Self::new(baseurl, RequestExtras::default())
    }

    /// A client for `baseurl` over `client` (which carries credentials as default headers).
    pub fn with_reqwest(baseurl: &str, client: reqwest::Client) -> Self {
        Self::new_with_client(baseurl, client, RequestExtras::default())
    }

    /// This client, filtering listings and counts by these tags (`tag.KEY=VALUE`, all must
    /// match).
    pub fn with_tags(&self, tags: &[(String, String)]) -> Self {
        let query = tags
            .iter()
            .map(|(k, v)| (format!("tag.{k}"), v.clone()))
            .collect();
        Self::new_with_client(&self.baseurl, self.client.clone(), RequestExtras { query })
    }
}
