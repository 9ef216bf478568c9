//! Wiring: opens the store and the engine, builds the manager, starts the sync task, loads the
//! definitions, serves HTTP and starts the local workers. Returns a handle to stop it all.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use wfm_core::{ManagerConfig, StepFunctions, Store, WorkflowManager};
use wfm_engine::{Engine, EngineConfig};
use wfm_store_sqlite::SqliteStore;

use crate::auth::{secrets, Auth, AuthMode};
use crate::config::{Config, Executor, StoreUrl};
use crate::embedded::EmbeddedStepFunctions;
use crate::ops::{Ops, Probe, SfnProbe, StoreProbe};
use crate::sync::{queue_unfinished, run_sync, SyncObserver};
use crate::{api, loader, local_workers, sfn_wire};
use wfm_core::access::{AccessStore, ApiToken, Role};

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState {
    /// The manager (and through it the store).
    pub manager: WorkflowManager,
    /// The embedded engine, for the `/sfn` protocol.
    pub engine: Engine,
    /// Longest GetActivityTask wait.
    pub activity_poll_wait: Duration,
    /// Bulk repair jobs.
    pub repairs: wfm_core::repair::Repairs,
    /// Access control.
    pub auth: Auth,
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory cannot be created.
    #[error("cannot create the data directory {0}: {1}")]
    DataDir(String, std::io::Error),
    /// The store cannot be opened.
    #[error("cannot open the store: {0}")]
    Store(String),
    /// The engine cannot be opened.
    #[error("cannot open the embedded engine: {0}")]
    Engine(String),
    /// A definition or workers file is invalid.
    #[error("cannot load definitions: {0}")]
    Definitions(String),
    /// The listener cannot be bound.
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    /// A local worker cannot start.
    #[error("cannot start local workers: {0}")]
    Workers(String),
    /// Listening beyond this machine without authentication.
    #[error("refusing to listen on {0} without authentication: anyone who can reach it could run and change workflows. Start with --auth tokens (and WFM_ADMIN_TOKEN=<a long random secret> to make the first tokens), or listen on a loopback address such as 127.0.0.1")]
    Unauthenticated(SocketAddr),
    /// The bootstrap admin token cannot be registered.
    #[error("cannot register the admin token: {0}")]
    AdminToken(String),
    /// The AWS configuration is incomplete.
    #[error("AWS configuration: {0}")]
    Aws(String),
}

/// The whole HTTP surface, with the default body limit.
pub fn router(state: AppState) -> Router {
    router_with_limit(state, crate::limits::MAX_BODY_BYTES)
}

/// The whole HTTP surface, refusing bodies over `max_body_bytes`.
pub fn router_with_limit(state: AppState, max_body_bytes: usize) -> Router {
    serve_router(state, max_body_bytes, true, Ops::new(Vec::new()))
}

/// The HTTP surface the service serves: the REST API and UI, the `/sfn` endpoint of the
/// embedded engine when it runs executions, and the ops routes.
fn serve_router(state: AppState, max_body_bytes: usize, sfn_endpoint: bool, ops: Ops) -> Router {
    let mut app = api::router(state.clone());
    if sfn_endpoint {
        app = app.merge(sfn_wire::router());
    }
    app.route_layer(axum::middleware::from_fn(crate::ops::track))
        .layer(axum::extract::DefaultBodyLimit::max(max_body_bytes))
        .with_state(state)
        .merge(crate::ops::router(ops))
}

/// The store the configuration names: the SQLite file, or the DynamoDB tables (created if
/// missing).
async fn open_store(
    config: &Config,
    aws: &mut AwsConfig,
) -> Result<(Arc<dyn Store>, Arc<dyn AccessStore>), StartError> {
    let default_path = config.data_dir.join("workflow-manager.db");
    let url = config
        .store
        .clone()
        .unwrap_or(StoreUrl::Sqlite(default_path));
    match url {
        StoreUrl::Sqlite(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| StartError::DataDir(dir.display().to_string(), e))?;
            }
            let store =
                Arc::new(SqliteStore::open(&path).map_err(|e| StartError::Store(e.to_string()))?);
            Ok((store.clone(), store))
        }
        StoreUrl::DynamoDb(prefix) => {
            let sdk = aws.get(config).await?;
            let store = Arc::new(wfm_store_dynamodb::DynamoStore::new(
                aws_sdk_dynamodb::Client::new(sdk),
                &prefix,
            ));
            store
                .ensure_tables()
                .await
                .map_err(|e| StartError::Store(e.to_string()))?;
            tracing::info!(prefix, "using the DynamoDB store");
            Ok((store.clone(), store))
        }
    }
}

/// The AWS SDK configuration, loaded once and only if something needs it.
#[derive(Default)]
struct AwsConfig(Option<aws_config::SdkConfig>);

impl AwsConfig {
    async fn get(&mut self, config: &Config) -> Result<&aws_config::SdkConfig, StartError> {
        if self.0.is_none() {
            self.0 = Some(
                crate::aws::sdk_config(config.region.as_deref())
                    .await
                    .map_err(StartError::Aws)?,
            );
        }
        self.0
            .as_ref()
            .ok_or_else(|| StartError::Aws("not loaded".into()))
    }
}

/// Registers `WFM_ADMIN_TOKEN` (by its hash) as the admin token named `bootstrap`, unless it
/// is already there.
async fn register_admin_token(store: &dyn AccessStore, secret: &str) -> Result<(), StartError> {
    let fail = |e: wfm_core::StoreError| StartError::AdminToken(e.to_string());
    if secret.len() < 20 {
        return Err(StartError::AdminToken(
            "WFM_ADMIN_TOKEN must be at least 20 characters".into(),
        ));
    }
    let hash = secrets::hash(secret);
    if store.token_by_hash(&hash).await.map_err(fail)?.is_some() {
        return Ok(());
    }
    let token = ApiToken {
        id: secrets::new_id(),
        name: "bootstrap".into(),
        role: Role::Admin,
        created_at: chrono::Utc::now(),
        created_by: "WFM_ADMIN_TOKEN".into(),
        revoked_at: None,
        expires_at: None,
    };
    match store.save_token(&token, &hash).await {
        // A revoked bootstrap token stays revoked: its hash is taken.
        Err(wfm_core::StoreError::Conflict(_)) => Err(StartError::AdminToken(
            "WFM_ADMIN_TOKEN was revoked; choose a new one".into(),
        )),
        other => other.map_err(fail),
    }
}

/// A running service.
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The embedded engine (benchmarks and tests drive it directly).
    pub engine: Engine,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<()>,
    workers: Vec<JoinHandle<()>>,
    driver: Arc<crate::background::Driver>,
}

impl Running {
    /// Stops the background tasks (up to 5 s), the workers, then the server: it stops
    /// accepting connections and answers the requests in flight (waiting GetActivityTask long
    /// polls answer "no task" at once; the rest get up to 5 s); then the engine. Returns
    /// whether every request in flight was answered within that grace period.
    pub async fn stop(self) -> bool {
        self.engine.drain_polls();
        let _ = self.shutdown.send(true);
        self.driver.stop(Duration::from_secs(5)).await;
        for w in self.workers {
            let _ = tokio::time::timeout(Duration::from_secs(15), w).await;
        }
        let mut server = self.server;
        let finished = tokio::time::timeout(Duration::from_secs(5), &mut server)
            .await
            .is_ok();
        if !finished {
            tracing::warn!(
                "requests still in flight after 5 s of shutdown: stopping without waiting for them"
            );
            server.abort();
        }
        // What the engine committed stays; what it had not is done again by the next start.
        // Halting also gives up its database's lock, so another process may open it.
        self.engine.halt();
        finished
    }
}

/// Starts the service.
pub async fn start(config: &Config) -> Result<Running, StartError> {
    if config.auth == AuthMode::None && !config.listen.ip().is_loopback() {
        return Err(StartError::Unauthenticated(config.listen));
    }
    // Metrics recorded from now on show in /metrics.
    crate::ops::prometheus();
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| StartError::DataDir(config.data_dir.display().to_string(), e))?;
    let mut aws = AwsConfig::default();
    let (store, access_store) = open_store(config, &mut aws).await?;
    if let Some(secret) = &config.admin_token {
        register_admin_token(access_store.as_ref(), secret).await?;
    }
    let (observer, sync_rx) = SyncObserver::new();
    let sync_tx = observer.sender();
    let embedded = config.executor == Executor::Embedded;
    // The embedded engine's region, in its ARNs and in its Batch tasks' history events.
    let engine_region = config.region.clone().unwrap_or_else(|| "us-east-1".into());
    let engine = Engine::open(
        &config.data_dir.join("engine.db"),
        EngineConfig {
            region: engine_region.clone(),
            account: config.account_for_arns(),
        },
        embedded.then(|| Arc::new(observer) as Arc<dyn wfm_engine::ExecutionObserver>),
    )
    .map_err(|e| StartError::Engine(e.to_string()))?;
    let mut probes: Vec<Box<dyn Probe>> = vec![Box::new(StoreProbe(store.clone()))];
    let sfn: Arc<dyn StepFunctions> = if embedded {
        Arc::new(EmbeddedStepFunctions::new(
            engine.clone(),
            config.role_arn.clone(),
        ))
    } else {
        let sdk = aws.get(config).await?;
        let region = sdk
            .region()
            .map(|r| r.to_string())
            .ok_or_else(|| StartError::Aws("no region".into()))?;
        let sfn_client = aws_sdk_sfn::Client::new(sdk);
        // ARNs are built with the account AWS answers for, never a guessed one.
        let account = wfm_aws_sfn::account::settle_account(
            &aws_sdk_sts::Client::new(sdk),
            &sfn_client,
            config.account.as_deref(),
        )
        .await
        .map_err(|e| StartError::Aws(e.to_string()))?;
        tracing::info!(%account, "Step Functions account");
        let aws_sfn = Arc::new(wfm_aws_sfn::AwsStepFunctions::new(
            sfn_client,
            region,
            account,
            config.role_arn.clone(),
        ));
        probes.push(Box::new(SfnProbe(aws_sfn.clone())));
        aws_sfn
    };
    let manager = WorkflowManager::new(
        store.clone(),
        sfn,
        ManagerConfig {
            zombie_grace: Duration::from_secs(config.zombie_grace_seconds),
        },
    );
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let driver = crate::background::Driver::new();
    probes.push(Box::new(crate::background::BackgroundProbe(driver.clone())));
    let queued = if embedded {
        let (sync_manager, mut stopping) = (manager.clone(), shutdown_rx.clone());
        driver.spawn("status-sync", async move {
            // A sync cut short is done again at the next start (its workflow is unfinished).
            tokio::select! {
                () = run_sync(sync_manager, sync_rx) => {}
                _ = stopping.wait_for(|s| *s) => {}
            }
        });
        queue_unfinished(&manager, &sync_tx)
            .await
            .map_err(|e| StartError::Store(e.to_string()))?
    } else {
        drop(sync_rx);
        let reconcile = crate::reconcile::ReconcileConfig {
            rate: config.sync_rate.max(0.1),
            burst: config.sync_rate.max(1.0),
            ..Default::default()
        };
        let (reconciler, reconciling) =
            crate::reconcile::start(manager.clone(), reconcile, shutdown_rx.clone());
        driver.spawn("reconcile", async move {
            let stats = reconciling.await;
            tracing::info!(?stats, "reconciliation stopped");
        });
        if let Some(queue_url) = &config.events_queue_url {
            let sdk = aws.get(config).await?;
            driver.spawn(
                "status-events",
                crate::events::consume(
                    aws_sdk_sqs::Client::new(sdk),
                    queue_url.clone(),
                    reconciler,
                    shutdown_rx.clone(),
                ),
            );
            tracing::info!(queue = %queue_url, "execution status events nudge the sync");
        }
        0
    };
    if queued > 0 {
        tracing::info!(
            queued,
            "syncing workflows left unfinished by the previous process"
        );
    }
    if embedded {
        // Batch states run through aws-sdk-batch; its client is made when the first one runs.
        let region = config.region.clone();
        engine.register_integration(Arc::new(wfm_aws_batch::BatchIntegration::lazy(
            engine_region,
            Box::new(move || {
                let region = region.clone();
                Box::pin(async move {
                    let sdk = crate::aws::sdk_config(region.as_deref()).await?;
                    Ok(aws_sdk_batch::Client::new(&sdk))
                })
            }),
        )));
        register_integrations(&engine, config)?;
    }
    let resumed = engine
        .recover()
        .await
        .map_err(|e| StartError::Engine(e.to_string()))?;
    if resumed > 0 {
        tracing::info!(
            resumed,
            "resumed executions left running by the previous process"
        );
    }

    let workers_file = if config.definitions.is_dir() {
        loader::load_definitions(&manager, &config.definitions)
            .await
            .map_err(|e| StartError::Definitions(e.to_string()))?;
        local_workers::read_workers(&config.definitions)
            .map_err(|e| StartError::Definitions(e.to_string()))?
    } else {
        tracing::warn!(dir = %config.definitions.display(), "no definitions directory; starting empty");
        None
    };

    let state = AppState {
        manager,
        engine: engine.clone(),
        activity_poll_wait: Duration::from_secs(config.activity_poll_seconds),
        repairs: Default::default(),
        auth: Auth::new(
            config.auth,
            access_store,
            config
                .cookie_secure
                .unwrap_or(!config.listen.ip().is_loopback()),
        ),
    };
    let local_key = state.auth.local_key.clone();
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| StartError::Listen(config.listen, e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| StartError::Listen(config.listen, e))?;
    let mut server_shutdown = shutdown_rx.clone();
    let mut ops = Ops::new(probes);
    if embedded {
        ops = ops.with_engine(engine.clone());
    }
    let app = serve_router(state, config.max_body_bytes, embedded, ops);
    let server = tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = server_shutdown.wait_for(|stop| *stop).await;
        });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "server stopped with an error");
        }
    });

    let mut workers = Vec::new();
    if !embedded && workers_file.is_some() && !config.no_local_workers {
        tracing::warn!(
            "local workers are not started with --executor sfn: run them against Step Functions"
        );
    }
    if let (Some(file), false, true) = (workers_file, config.no_local_workers, embedded) {
        let host = if addr.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            addr.ip().to_string()
        };
        let endpoint = format!("http://{host}:{}/sfn", addr.port());
        let credentials = (
            local_key.access_key_id.clone(),
            local_key.secret_access_key.clone(),
        );
        workers = local_workers::start_workers(
            &file,
            &config.definitions,
            &endpoint,
            credentials,
            shutdown_rx,
        )
        .await
        .map_err(StartError::Workers)?;
    }
    tracing::info!(%addr, "workflow-manager listening");
    Ok(Running {
        engine,
        addr,
        shutdown: shutdown_tx,
        server,
        workers,
        driver,
    })
}

/// The embedded engine's Task integrations: SQS, SNS, DynamoDB, EventBridge and Lambda through
/// the standard AWS configuration (loaded when the first such Task runs), the functions of
/// `functions.yaml` and the connections of `connections.yaml` in the definitions directory,
/// and HTTP Tasks limited to `--http-allow`.
fn register_integrations(engine: &wfm_engine::Engine, config: &Config) -> Result<(), StartError> {
    let dir = &config.definitions;
    let functions = wfm_aws_integrations::LocalFunctions::load(dir)
        .map_err(|e| StartError::Definitions(e.to_string()))?;
    if !functions.names().is_empty() {
        tracing::info!(functions = ?functions.names(), "Lambda functions run as local commands");
    }
    let http = wfm_aws_integrations::HttpPolicy::load(dir, config.http_allow.clone())
        .map_err(StartError::Definitions)?;
    let region = config.region.clone();
    let aws = Arc::new(wfm_aws_integrations::Aws::new(Box::new(move || {
        let region = region.clone();
        Box::pin(async move { crate::aws::sdk_config(region.as_deref()).await })
    })));
    wfm_aws_integrations::register(engine, aws, functions, http);
    Ok(())
}
