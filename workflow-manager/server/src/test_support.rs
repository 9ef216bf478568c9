//! What the router-level tests share: a service over in-memory storage and engine, with one
//! SQLite store serving as both `Store` and `AccessStore`.

use std::sync::Arc;
use std::time::Duration;

use wfm_core::{ManagerConfig, WorkflowManager};
use wfm_engine::{Engine, EngineConfig};
use wfm_store_sqlite::SqliteStore;

use crate::app::AppState;
use crate::auth::{secrets, Auth, AuthMode};
use crate::embedded::EmbeddedStepFunctions;
use wfm_core::access::{ApiToken, Role};

/// A service in `mode`, in memory, with a 10 ms activity long poll. Nothing syncs the store
/// with the engine: workflows stay as they were started.
pub fn app_state(mode: AuthMode) -> AppState {
    build(mode, false)
}

/// [`app_state`] with the sync task running (on the current runtime), so that workflows move
/// on as their executions do.
pub fn app_state_with_sync(mode: AuthMode) -> AppState {
    build(mode, true)
}

fn build(mode: AuthMode, sync: bool) -> AppState {
    let (observer, rx) = crate::sync::SyncObserver::new();
    let observer: Option<Arc<dyn wfm_engine::ExecutionObserver>> =
        sync.then(|| Arc::new(observer) as Arc<dyn wfm_engine::ExecutionObserver>);
    let engine = Engine::in_memory(EngineConfig::default(), observer).expect("engine");
    let store = Arc::new(SqliteStore::in_memory().expect("store"));
    let manager = WorkflowManager::new(
        store.clone(),
        Arc::new(EmbeddedStepFunctions::new(engine.clone(), "arn:role")),
        ManagerConfig::default(),
    );
    if sync {
        tokio::spawn(crate::sync::run_sync(manager.clone(), rx));
    }
    AppState {
        manager,
        engine,
        activity_poll_wait: Duration::from_millis(10),
        repairs: Default::default(),
        auth: Auth::new(mode, store, false),
    }
}

/// Registers a token of `role` named `name` with the secret `secret`, straight in the store.
pub async fn save_token(app: &AppState, name: &str, role: Role, secret: &str) {
    let token = ApiToken {
        id: secrets::new_id(),
        name: name.into(),
        role,
        created_at: chrono::Utc::now(),
        created_by: "test".into(),
        revoked_at: None,
        expires_at: None,
    };
    app.auth
        .store
        .save_token(&token, &secrets::hash(secret))
        .await
        .expect("token");
}
