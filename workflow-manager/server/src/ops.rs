//! What operators and orchestrators read: `/_ready` (readiness: every backend answers) and
//! `/metrics` (Prometheus text format), plus the middleware that times every request by its
//! route. `/_health` (liveness) is part of the REST API.
//!
//! Both are public, like `/_health`: they carry counts and names of definitions, never
//! inputs, outputs or credentials. Restrict them at the network edge if names are sensitive.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::json;

/// One backend the service needs, checked by `/_ready`.
#[async_trait::async_trait]
pub trait Probe: Send + Sync {
    /// Its name in the answer (`store`, `stepfunctions`).
    fn name(&self) -> &'static str;
    /// Whether it answers.
    async fn check(&self) -> Result<(), String>;
}

/// The store answers a one-row query.
pub struct StoreProbe(pub Arc<dyn wfm_core::Store>);

#[async_trait::async_trait]
impl Probe for StoreProbe {
    fn name(&self) -> &'static str {
        "store"
    }
    async fn check(&self) -> Result<(), String> {
        self.0
            .unfinished_workflow_ids(1)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// Step Functions answers ListStateMachines.
pub struct SfnProbe(pub Arc<wfm_aws_sfn::AwsStepFunctions>);

#[async_trait::async_trait]
impl Probe for SfnProbe {
    fn name(&self) -> &'static str {
        "stepfunctions"
    }
    async fn check(&self) -> Result<(), String> {
        self.0.ping().await.map_err(|e| e.to_string())
    }
}

/// State of the ops routes.
#[derive(Clone)]
pub struct Ops {
    probes: Arc<Vec<Box<dyn Probe>>>,
    engine: Option<wfm_engine::Engine>,
}

impl Ops {
    /// Ops routes checking `probes`.
    pub fn new(probes: Vec<Box<dyn Probe>>) -> Self {
        Self {
            probes: Arc::new(probes),
            engine: None,
        }
    }

    /// Also reports the embedded engine's waiting activity tasks.
    pub fn with_engine(mut self, engine: wfm_engine::Engine) -> Self {
        self.engine = Some(engine);
        self
    }
}

/// The process-wide Prometheus recorder, installed on first use together with a thread that
/// drains its histogram samples into their buckets every 5 s (without it, samples pile up
/// between scrapes: 8 bytes per request, without bound when nothing scrapes).
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&[
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                60.0,
            ])
            .map(|b| b.build_recorder())
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        let handle = recorder.handle();
        // Fails only if another recorder was installed first; then this handle stays empty.
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
        }
        let upkept = handle.clone();
        let spawned = std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || loop {
                std::thread::sleep(std::time::Duration::from_secs(5));
                upkept.run_upkeep();
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the metrics upkeep thread");
        }
        handle
    })
}

/// `/_ready` and `/metrics`.
pub fn router(ops: Ops) -> Router {
    Router::new()
        .route("/_ready", get(ready))
        .route("/metrics", get(metrics_text))
        .with_state(ops)
}

async fn ready(State(ops): State<Ops>) -> Response {
    let mut checks = serde_json::Map::new();
    let mut failing: Vec<&str> = Vec::new();
    for probe in ops.probes.iter() {
        let result = tokio::time::timeout(std::time::Duration::from_secs(5), probe.check())
            .await
            .unwrap_or_else(|_| Err("no answer within 5 s".into()));
        match result {
            Ok(()) => checks.insert(probe.name().into(), json!("ok")),
            Err(e) => {
                failing.push(probe.name());
                checks.insert(probe.name().into(), json!(e))
            }
        };
    }
    if failing.is_empty() {
        (
            StatusCode::OK,
            Json(json!({"status": "ready", "checks": checks})),
        )
            .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "message": format!("not ready: cannot reach {}", failing.join(", ")),
                "checks": checks,
            })),
        )
            .into_response()
    }
}

async fn metrics_text(State(ops): State<Ops>) -> Response {
    if let Some(engine) = &ops.engine {
        let (waiting, oldest) = engine.waiting_tasks();
        metrics::gauge!("wfm_activity_tasks_waiting").set(waiting as f64);
        metrics::gauge!("wfm_activity_task_oldest_wait_seconds")
            .set(oldest.map_or(0.0, |d| d.as_secs_f64()));
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        prometheus().render(),
    )
        .into_response()
}

/// Times a request and counts it by method, route template and status.
pub async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = request.method().as_str().to_string();
    let start = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!(
        "wfm_http_request_duration_seconds",
        "method" => method,
        "route" => route,
        "status" => status
    )
    .record(start.elapsed().as_secs_f64());
    response
}
