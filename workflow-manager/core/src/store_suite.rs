//! The behaviour every [`Store`] must have, as a suite of checks that any implementation's
//! tests run against a fresh store (SQLite now, DynamoDB later). Each check panics with a
//! message on the first deviation.

use chrono::{Duration, Utc};
use serde_json::json;

use crate::model::{StateResource, Workflow, WorkflowDefinition, WorkflowStatus};
use crate::store::{Store, StoreError, WorkflowQuery};

/// A definition for tests.
pub fn sample_definition(name: &str, version: i64) -> WorkflowDefinition {
    WorkflowDefinition {
        id: format!("{name}-{version}"),
        name: name.to_string(),
        version,
        created_at: Utc::now(),
        manager: "step-functions".into(),
        state_machine: serde_json::from_value(
            json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}}),
        )
        .expect("valid machine"),
        default_tags: [("team".to_string(), "core".to_string())].into(),
    }
}

/// A queued workflow for tests.
pub fn sample_workflow(id: &str, def: &WorkflowDefinition) -> Workflow {
    let now = Utc::now();
    Workflow {
        id: id.to_string(),
        created_at: now,
        last_updated: now,
        stopped_at: None,
        workflow_definition: def.clone(),
        status: WorkflowStatus::Queued,
        namespace: "ns".into(),
        queue: "q".into(),
        input: r#"{"a":1}"#.into(),
        resolved_by_user: false,
        retry_for: None,
        retries: Vec::new(),
        tags: [("k".to_string(), "v".to_string())].into(),
        last_job: None,
        status_reason: String::new(),
        output: String::new(),
        jobs: Vec::new(),
        parent_workflow_id: None,
        child_workflow_ids: Vec::new(),
    }
}

/// Runs every check.
pub async fn run_all(store: &dyn Store) {
    definitions_are_versioned(store).await;
    state_resources_round_trip(store).await;
    workflows_round_trip_and_refuse_terminal_to_non_terminal(store).await;
    paging_never_skips_or_repeats(store).await;
    filters_combine(store).await;
}

/// Every listing filter, alone and combined, and the counts by status.
pub async fn filters_combine(store: &dyn Store) {
    let base = Utc::now();
    let defs = [
        sample_definition("suite-f-a", 0),
        sample_definition("suite-f-b", 0),
    ];
    for i in 0..12 {
        let mut wf = sample_workflow(&format!("suite-f-{i:02}"), &defs[i % 2]);
        wf.created_at = base + Duration::seconds(i as i64);
        wf.last_updated = wf.created_at;
        wf.namespace = if i < 6 { "ns-1".into() } else { "ns-2".into() };
        wf.queue = if i % 3 == 0 {
            "fast".into()
        } else {
            "slow".into()
        };
        wf.status = if i % 4 == 0 {
            WorkflowStatus::Failed
        } else {
            WorkflowStatus::Succeeded
        };
        wf.resolved_by_user = i % 4 != 0;
        wf.tags = [
            ("suite".to_string(), "f".to_string()),
            ("parity".to_string(), (i % 2).to_string()),
        ]
        .into();
        store.save_workflow(&wf).await.expect("save");
    }
    let all = WorkflowQuery {
        tags: vec![("suite".into(), "f".into())],
        limit: 100,
        oldest_first: true,
        ..Default::default()
    };
    let ids = |q: WorkflowQuery| async move { collect_ids(store, q).await };
    let n = |v: Vec<String>| {
        v.iter()
            .map(|id| id[8..].parse::<usize>().unwrap_or(99))
            .collect::<Vec<_>>()
    };
    assert_eq!(n(ids(all.clone()).await), (0..12).collect::<Vec<_>>());
    assert_eq!(
        n(ids(WorkflowQuery {
            definition_name: "suite-f-b".into(),
            ..all.clone()
        })
        .await),
        vec![1, 3, 5, 7, 9, 11]
    );
    assert_eq!(
        n(ids(WorkflowQuery {
            namespace: Some("ns-2".into()),
            queue: Some("fast".into()),
            ..all.clone()
        })
        .await),
        vec![6, 9]
    );
    assert_eq!(
        n(ids(WorkflowQuery {
            statuses: vec![WorkflowStatus::Failed],
            resolved_by_user: Some(false),
            ..all.clone()
        })
        .await),
        vec![0, 4, 8]
    );
    assert_eq!(
        n(ids(WorkflowQuery {
            created_after: Some(base + Duration::seconds(3)),
            created_before: Some(base + Duration::seconds(6)),
            ..all.clone()
        })
        .await),
        vec![3, 4, 5]
    );
    assert_eq!(
        n(ids(WorkflowQuery {
            tags: vec![("suite".into(), "f".into()), ("parity".into(), "0".into())],
            limit: 2,
            ..all.clone()
        })
        .await),
        vec![0, 2, 4, 6, 8, 10]
    );
    let newest = WorkflowQuery {
        oldest_first: false,
        limit: 5,
        ..all.clone()
    };
    assert_eq!(n(ids(newest).await), (0..12).rev().collect::<Vec<_>>());
    let counts = store.count_workflows(&all).await.expect("counts");
    assert_eq!(counts.get(&WorkflowStatus::Failed), Some(&3));
    assert_eq!(counts.get(&WorkflowStatus::Succeeded), Some(&9));
    let counts = store
        .count_workflows(&WorkflowQuery {
            namespace: Some("ns-1".into()),
            ..all.clone()
        })
        .await
        .expect("counts");
    assert_eq!(counts.values().sum::<u64>(), 6);
}

/// Versions: 0 first, latest is the highest, a duplicate version conflicts.
pub async fn definitions_are_versioned(store: &dyn Store) {
    let v0 = sample_definition("suite-def", 0);
    store.save_workflow_definition(&v0).await.expect("save v0");
    assert_eq!(
        store
            .latest_workflow_definition("suite-def")
            .await
            .expect("latest"),
        v0
    );
    let mut v1 = sample_definition("suite-def", 1);
    v1.created_at = v0.created_at + Duration::milliseconds(5);
    store.save_workflow_definition(&v1).await.expect("save v1");
    assert_eq!(
        store
            .latest_workflow_definition("suite-def")
            .await
            .expect("latest")
            .version,
        1
    );
    assert!(matches!(
        store
            .save_workflow_definition(&sample_definition("suite-def", 1))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store
            .get_workflow_definition("suite-def", 0)
            .await
            .expect("get v0"),
        v0
    );
    assert!(matches!(
        store.get_workflow_definition("suite-def", 7).await,
        Err(StoreError::NotFound(_))
    ));
    let versions: Vec<i64> = store
        .workflow_definition_versions("suite-def")
        .await
        .expect("versions")
        .iter()
        .map(|d| d.version)
        .collect();
    assert_eq!(versions, vec![1, 0]);
    store
        .save_workflow_definition(&sample_definition("suite-other", 0))
        .await
        .expect("other");
    let latest: Vec<(String, i64)> = store
        .latest_workflow_definitions()
        .await
        .expect("latest all")
        .into_iter()
        .map(|d| (d.name, d.version))
        .filter(|(n, _)| n.starts_with("suite-"))
        .collect();
    assert_eq!(
        latest,
        vec![("suite-def".to_string(), 1), ("suite-other".to_string(), 0)]
    );
    assert!(matches!(
        store.latest_workflow_definition("suite-missing").await,
        Err(StoreError::NotFound(_))
    ));
}

/// Save, get, replace, delete.
pub async fn state_resources_round_trip(store: &dyn Store) {
    let mut r = StateResource {
        name: "res".into(),
        namespace: "ns".into(),
        uri: "arn:aws:batch:x".into(),
        last_updated: Utc::now(),
        resource_type: None,
    };
    store.save_state_resource(&r).await.expect("save");
    assert_eq!(store.get_state_resource("ns", "res").await.expect("get"), r);
    let other = StateResource {
        name: "another".into(),
        namespace: "other-ns".into(),
        ..r.clone()
    };
    store.save_state_resource(&other).await.expect("save");
    let all = store.list_state_resources(None).await.expect("list");
    let keys: Vec<_> = all
        .iter()
        .map(|x| (x.namespace.as_str(), x.name.as_str()))
        .collect();
    assert_eq!(
        keys,
        [("ns", "res"), ("other-ns", "another")],
        "by namespace and name"
    );
    let mine = store.list_state_resources(Some("ns")).await.expect("list");
    assert_eq!(mine, [r.clone()]);
    store
        .delete_state_resource("other-ns", "another")
        .await
        .expect("delete");
    r.uri = "arn:aws:batch:y".into();
    store.save_state_resource(&r).await.expect("replace");
    assert_eq!(
        store
            .get_state_resource("ns", "res")
            .await
            .expect("get")
            .uri,
        "arn:aws:batch:y"
    );
    store
        .delete_state_resource("ns", "res")
        .await
        .expect("delete");
    assert!(matches!(
        store.get_state_resource("ns", "res").await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.delete_state_resource("ns", "res").await,
        Err(StoreError::NotFound(_))
    ));
}

/// Workflows persist verbatim; terminal statuses stick.
pub async fn workflows_round_trip_and_refuse_terminal_to_non_terminal(store: &dyn Store) {
    let def = sample_definition("suite-wf", 0);
    let mut wf = sample_workflow("suite-wf-1", &def);
    store.save_workflow(&wf).await.expect("save");
    assert_eq!(store.get_workflow("suite-wf-1").await.expect("get"), wf);
    assert!(matches!(
        store.save_workflow(&wf).await,
        Err(StoreError::Conflict(_))
    ));
    wf.status = WorkflowStatus::Succeeded;
    wf.output = r#"{"done":true}"#.into();
    wf.last_updated = Utc::now();
    store.update_workflow(&wf).await.expect("update");
    let got = store.get_workflow("suite-wf-1").await.expect("get");
    assert_eq!(got.status, WorkflowStatus::Succeeded);
    assert!(got.last_updated > got.created_at);
    wf.status = WorkflowStatus::Running;
    assert!(matches!(
        store.update_workflow(&wf).await,
        Err(StoreError::TerminalToNonTerminal { .. })
    ));
    assert_eq!(
        store.get_workflow("suite-wf-1").await.expect("get").status,
        WorkflowStatus::Succeeded
    );
    // A conditional update applies only to the version it was computed from.
    let mut stale = store.get_workflow("suite-wf-1").await.expect("get");
    let read_at = stale.last_updated;
    let mut fresh = stale.clone();
    fresh.status_reason = "set by an operator".into();
    fresh.last_updated = Utc::now() + Duration::milliseconds(1);
    assert!(store
        .update_workflow_if(&fresh, read_at)
        .await
        .expect("first writer"));
    stale.output = "stale".into();
    stale.last_updated = Utc::now() + Duration::milliseconds(2);
    assert!(!store
        .update_workflow_if(&stale, read_at)
        .await
        .expect("second writer"));
    assert_eq!(
        store
            .get_workflow("suite-wf-1")
            .await
            .expect("get")
            .status_reason,
        "set by an operator"
    );

    let mut open = sample_workflow("suite-wf-open", &def);
    open.status = WorkflowStatus::Running;
    store.save_workflow(&open).await.expect("save open");
    let unfinished = store
        .unfinished_workflow_ids(1000)
        .await
        .expect("unfinished");
    assert!(
        unfinished.contains(&"suite-wf-open".to_string()),
        "{unfinished:?}"
    );
    assert!(
        !unfinished.contains(&"suite-wf-1".to_string()),
        "a succeeded workflow is unfinished"
    );
    let since = store
        .unfinished_workflows_since(open.created_at, 1000)
        .await
        .expect("unfinished since");
    assert!(
        since
            .iter()
            .any(|(id, at)| id == "suite-wf-open" && *at == open.created_at),
        "{since:?}"
    );
    assert!(!since.iter().any(|(id, _)| id == "suite-wf-1"));
    let later = store
        .unfinished_workflows_since(open.created_at + Duration::milliseconds(1), 1000)
        .await
        .expect("unfinished since");
    assert!(
        !later.iter().any(|(id, _)| id == "suite-wf-open"),
        "created before the watermark: {later:?}"
    );
    store
        .delete_workflow("suite-wf-open")
        .await
        .expect("delete open");
    store.delete_workflow("suite-wf-1").await.expect("delete");
    assert!(matches!(
        store.get_workflow("suite-wf-1").await,
        Err(StoreError::NotFound(_))
    ));
    let ghost = sample_workflow("suite-ghost", &def);
    assert!(matches!(
        store.update_workflow(&ghost).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn collect_ids(store: &dyn Store, mut q: WorkflowQuery) -> Vec<String> {
    let mut ids = Vec::new();
    loop {
        let page = store.list_workflows(&q).await.expect("page");
        assert!(
            page.workflows.len() <= q.limit,
            "page larger than the limit"
        );
        ids.extend(page.workflows.into_iter().map(|w| w.id));
        match page.next_page_token {
            Some(t) => q.page_token = Some(t),
            None => return ids,
        }
    }
}

/// Newest and oldest first, ties in creation time, filters, bad tokens.
pub async fn paging_never_skips_or_repeats(store: &dyn Store) {
    let def = sample_definition("suite-page", 0);
    let base = Utc::now();
    let mut expected_oldest = Vec::new();
    for i in 0..23 {
        let mut wf = sample_workflow(&format!("suite-page-{i:02}"), &def);
        // Groups of three share a creation time.
        wf.created_at = base + Duration::milliseconds((i / 3) as i64);
        wf.last_updated = wf.created_at;
        if i % 4 == 0 {
            wf.status = WorkflowStatus::Failed;
        }
        store.save_workflow(&wf).await.expect("save");
        expected_oldest.push(wf.id);
    }
    let q = WorkflowQuery {
        definition_name: "suite-page".into(),
        limit: 4,
        oldest_first: true,
        ..Default::default()
    };
    assert_eq!(collect_ids(store, q.clone()).await, expected_oldest);
    let mut expected_newest = expected_oldest.clone();
    expected_newest.reverse();
    let newest = WorkflowQuery {
        oldest_first: false,
        ..q.clone()
    };
    assert_eq!(collect_ids(store, newest.clone()).await, expected_newest);

    // A row inserted between pages (newer than all) does not shift the pages already read.
    let first = store.list_workflows(&newest).await.expect("first page");
    let mut late = sample_workflow("suite-page-late", &def);
    late.created_at = base + Duration::seconds(10);
    store.save_workflow(&late).await.expect("late");
    let second = store
        .list_workflows(&WorkflowQuery {
            page_token: first.next_page_token.clone(),
            ..newest.clone()
        })
        .await
        .expect("second page");
    assert_eq!(second.workflows[0].id, expected_newest[4]);

    let failed = WorkflowQuery {
        statuses: vec![WorkflowStatus::Failed],
        ..q.clone()
    };
    let failed_ids = collect_ids(store, failed).await;
    assert_eq!(failed_ids.len(), 6);
    assert!(failed_ids.iter().all(|id| id.ends_with("00")
        || id.ends_with('4')
        || id.ends_with('8')
        || id.ends_with("12")
        || id.ends_with("16")
        || id.ends_with("20")));

    let bad = WorkflowQuery {
        page_token: Some("not-a-token".into()),
        ..q
    };
    assert!(matches!(
        store.list_workflows(&bad).await,
        Err(StoreError::InvalidPageToken(_))
    ));
}

/// Runs every check of an [`AccessStore`](crate::access::AccessStore).
pub async fn run_access_checks(store: &dyn crate::access::AccessStore) {
    tokens_are_found_by_hash_until_revoked(store).await;
    access_keys_round_trip_until_revoked(store).await;
    sessions_end_with_expiry_logout_or_revocation(store).await;
    audit_log_pages_newest_first(store).await;
}

fn sample_token(id: &str, role: crate::access::Role) -> crate::access::ApiToken {
    crate::access::ApiToken {
        id: id.into(),
        name: format!("name-{id}"),
        role,
        created_at: Utc::now(),
        created_by: "suite".into(),
        revoked_at: None,
        expires_at: None,
    }
}

async fn tokens_are_found_by_hash_until_revoked(store: &dyn crate::access::AccessStore) {
    use crate::access::Role;
    let a = sample_token("tok-a", Role::Reader);
    let b = sample_token("tok-b", Role::Admin);
    store.save_token(&a, "hash-a").await.expect("save a");
    store.save_token(&b, "hash-b").await.expect("save b");
    assert!(
        matches!(
            store
                .save_token(&sample_token("tok-a", Role::Admin), "hash-c")
                .await,
            Err(StoreError::Conflict(_))
        ),
        "a token id is saved once"
    );
    assert!(
        matches!(
            store
                .save_token(&sample_token("tok-c", Role::Admin), "hash-a")
                .await,
            Err(StoreError::Conflict(_))
        ),
        "a secret hash belongs to one token"
    );
    let found = store.token_by_hash("hash-b").await.expect("lookup");
    assert_eq!(
        found.map(|t| (t.id, t.role)),
        Some(("tok-b".to_string(), Role::Admin))
    );
    assert_eq!(store.token_by_hash("nope").await.expect("lookup"), None);
    for _ in 0..2 {
        // Looked up (and so perhaps cached) before it is revoked.
        assert!(store
            .token_by_hash("hash-a")
            .await
            .expect("lookup")
            .is_some());
    }
    let revoked = store
        .revoke_token("tok-a", Utc::now())
        .await
        .expect("revoke");
    assert!(revoked.revoked_at.is_some(), "the revoked token says when");
    assert_eq!(
        store.token_by_hash("hash-a").await.expect("lookup"),
        None,
        "a revoked token is not found"
    );
    assert!(matches!(
        store.revoke_token("tok-zzz", Utc::now()).await,
        Err(StoreError::NotFound(_))
    ));
    let all = store.list_tokens().await.expect("list");
    let ids: Vec<_> = all.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(
        ids,
        ["tok-a", "tok-b"],
        "tokens listed oldest first, revoked included"
    );
    assert!(all[0].revoked_at.is_some() && all[1].revoked_at.is_none());

    let mut expired = sample_token("tok-old", Role::Admin);
    expired.expires_at = Some(Utc::now() - Duration::seconds(1));
    store.save_token(&expired, "hash-old").await.expect("save");
    let mut later = sample_token("tok-later", Role::Admin);
    later.expires_at = Some(Utc::now() + Duration::hours(1));
    store.save_token(&later, "hash-later").await.expect("save");
    assert_eq!(
        store.token_by_hash("hash-old").await.expect("lookup"),
        None,
        "an expired token is not found"
    );
    assert!(store
        .token_by_hash("hash-later")
        .await
        .expect("lookup")
        .is_some());
    store
        .save_session("sess-of-old", "tok-old", Utc::now() + Duration::hours(1))
        .await
        .expect("session");
    assert_eq!(
        store
            .session_token("sess-of-old", Utc::now())
            .await
            .expect("lookup"),
        None,
        "a session of an expired token is not found"
    );
}

async fn access_keys_round_trip_until_revoked(store: &dyn crate::access::AccessStore) {
    let key = crate::access::AccessKey {
        access_key_id: "AKIDSUITE".into(),
        secret_access_key: "secret".into(),
        name: "worker".into(),
        namespaces: vec!["ns-a".into(), "ns-b".into()],
        created_at: Utc::now(),
        created_by: "suite".into(),
        revoked_at: None,
    };
    store.save_access_key(&key).await.expect("save key");
    assert!(matches!(
        store.save_access_key(&key).await,
        Err(StoreError::Conflict(_))
    ));
    let found = store
        .access_key("AKIDSUITE")
        .await
        .expect("get")
        .expect("found");
    assert_eq!(
        found.secret_access_key, "secret",
        "the verifier needs the secret"
    );
    assert_eq!(found.namespaces, key.namespaces);
    assert_eq!(store.list_access_keys().await.expect("list").len(), 1);
    store
        .revoke_access_key("AKIDSUITE", Utc::now())
        .await
        .expect("revoke");
    assert_eq!(store.access_key("AKIDSUITE").await.expect("get"), None);
    assert!(matches!(
        store.revoke_access_key("AKIDNONE", Utc::now()).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn sessions_end_with_expiry_logout_or_revocation(store: &dyn crate::access::AccessStore) {
    use crate::access::Role;
    let now = Utc::now();
    store
        .save_token(&sample_token("tok-s", Role::Operator), "hash-s")
        .await
        .expect("save");
    store
        .save_session("sess-1", "tok-s", now + Duration::hours(1))
        .await
        .expect("session");
    store
        .save_session("sess-2", "tok-s", now + Duration::hours(1))
        .await
        .expect("session");
    store
        .save_session("sess-old", "tok-s", now - Duration::seconds(1))
        .await
        .expect("session");
    let t = store.session_token("sess-1", now).await.expect("lookup");
    assert_eq!(t.map(|t| t.id), Some("tok-s".to_string()));
    assert_eq!(
        store.session_token("sess-old", now).await.expect("lookup"),
        None,
        "an expired session is not found"
    );
    store.delete_session("sess-1").await.expect("logout");
    store.delete_session("sess-1").await.expect("logout twice");
    assert_eq!(
        store.session_token("sess-1", now).await.expect("lookup"),
        None
    );
    store.revoke_token("tok-s", now).await.expect("revoke");
    assert_eq!(
        store.session_token("sess-2", now).await.expect("lookup"),
        None,
        "revoking a token ends its sessions"
    );
}

async fn audit_log_pages_newest_first(store: &dyn crate::access::AccessStore) {
    for i in 0..5 {
        store
            .append_audit(&crate::access::AuditEntry {
                seq: 0,
                at: Utc::now(),
                actor: if i % 2 == 0 { "alice" } else { "bob" }.into(),
                credential_id: Some(format!("cred-{i}")),
                method: "POST".into(),
                path: format!("/workflows/{i}"),
                status: 200,
                target: (i == 4).then(|| "wf-made".to_string()),
            })
            .await
            .expect("append");
    }
    let page = store
        .list_audit(&crate::access::AuditQuery {
            limit: 2,
            ..Default::default()
        })
        .await
        .expect("list");
    let paths: Vec<_> = page.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["/workflows/4", "/workflows/3"], "newest first");
    assert_eq!(page[0].target.as_deref(), Some("wf-made"));
    assert_eq!(page[1].target, None);
    assert!(page[0].seq > page[1].seq);
    let rest = store
        .list_audit(&crate::access::AuditQuery {
            limit: 10,
            before_seq: Some(page[1].seq),
            ..Default::default()
        })
        .await
        .expect("list");
    let paths: Vec<_> = rest.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["/workflows/2", "/workflows/1", "/workflows/0"]);
    let alice = store
        .list_audit(&crate::access::AuditQuery {
            actor: Some("alice".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(alice.len(), 3);
    assert_eq!(alice[0].credential_id.as_deref(), Some("cred-4"));
}
