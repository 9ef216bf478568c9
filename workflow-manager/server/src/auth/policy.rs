//! What each route and each `/sfn` operation needs. The REST table is [`crate::api::ROUTES`]
//! (each route with its access), which `api-spec/openapi.yaml` documents as `x-required-role`;
//! a test checks the two agree and another calls every route with every role.

use wfm_core::access::Role;

/// What a REST route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not (health, the login page).
    Public,
    /// A principal with at least this role.
    Role(Role),
}

impl Access {
    /// The name used in the spec's `x-required-role`.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Public => "public",
            Access::Role(r) => r.as_str(),
        }
    }
}

/// What `method` on `route` (in the router's path syntax) needs. A route missing from the
/// table needs admin: access control fails closed.
pub fn rest_access(method: &str, route: &str) -> Access {
    crate::api::ROUTES
        .iter()
        .chain(crate::ui::ROUTES)
        .find(|(m, p, _)| *m == method && *p == route)
        .map(|(_, _, access)| *access)
        .unwrap_or(Access::Role(Role::Admin))
}

/// What an `/sfn` operation needs of an access key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SfnScope {
    /// The activities of this namespace.
    Namespace(String),
    /// Any valid key (listing activities; answering a task that no longer exists).
    AnyKey,
    /// A key for every namespace (`*`): executions and state machines.
    Unrestricted,
}

/// The namespace of an activity name (`namespace--resource`), if it has one.
pub fn activity_namespace(name: &str) -> Option<&str> {
    name.split_once("--")
        .map(|(ns, _)| ns)
        .filter(|ns| !ns.is_empty())
}

/// The activity name at the end of an activity ARN.
pub fn activity_name_of_arn(arn: &str) -> &str {
    arn.rsplit_once(":activity:").map(|(_, n)| n).unwrap_or(arn)
}

/// The scope of an activity, from its name: a name without a namespace needs an unrestricted key.
fn scope_of_activity(name: &str) -> SfnScope {
    match activity_namespace(name) {
        Some(ns) => SfnScope::Namespace(ns.to_string()),
        None => SfnScope::Unrestricted,
    }
}

/// The fields of an `/sfn` request body that decide its scope. Only these are read: the rest
/// of the body (a task's output can be 256 KiB) is skipped, not built into JSON values.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScopeFields {
    #[serde(default)]
    name: serde_json::Value,
    #[serde(default)]
    activity_arn: serde_json::Value,
    #[serde(default)]
    task_token: serde_json::Value,
}

impl ScopeFields {
    /// The fields of `body` (none when it is not a JSON object).
    pub fn of(body: &[u8]) -> Self {
        serde_json::from_slice(body).unwrap_or_default()
    }
}

/// A field's text (empty when absent or not a string).
fn text(v: &serde_json::Value) -> &str {
    v.as_str().unwrap_or("")
}

/// What `operation` with `body` needs; `task_activity` finds the activity ARN of a task token.
pub fn sfn_scope(
    operation: &str,
    body: &ScopeFields,
    task_activity: &dyn Fn(&str) -> Option<String>,
) -> SfnScope {
    match operation {
        "CreateActivity" => scope_of_activity(text(&body.name)),
        "GetActivityTask" | "DescribeActivity" | "DeleteActivity" => {
            scope_of_activity(activity_name_of_arn(text(&body.activity_arn)))
        }
        "SendTaskSuccess" | "SendTaskFailure" | "SendTaskHeartbeat" => {
            match task_activity(text(&body.task_token)) {
                Some(arn) => scope_of_activity(activity_name_of_arn(&arn)),
                // The task is gone (or never was): the engine's answer says so, and tells nothing.
                None => SfnScope::AnyKey,
            }
        }
        "ListActivities" => SfnScope::AnyKey,
        _ => SfnScope::Unrestricted,
    }
}

/// Whether an `/sfn` operation changes something worth auditing: the worker protocol's
/// polls and answers are not (they are the execution's history already).
pub fn sfn_is_audited(operation: &str) -> bool {
    matches!(
        operation,
        "CreateActivity"
            | "DeleteActivity"
            | "CreateStateMachine"
            | "UpdateStateMachine"
            | "DeleteStateMachine"
            | "StartExecution"
            | "StartSyncExecution"
            | "StopExecution"
            | "PublishStateMachineVersion"
            | "DeleteStateMachineVersion"
            | "CreateStateMachineAlias"
            | "UpdateStateMachineAlias"
            | "DeleteStateMachineAlias"
            | "TagResource"
            | "UntagResource"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sfn_operations_are_scoped_by_the_activity_namespace() {
        let token_of = |t: &str| {
            (t == "tok").then(|| "arn:aws:states:r:1:activity:billing--charge".to_string())
        };
        assert_eq!(
            sfn_scope(
                "CreateActivity",
                &ScopeFields::of(json!({"name": "billing--charge"}).to_string().as_bytes()),
                &token_of
            ),
            SfnScope::Namespace("billing".into())
        );
        assert_eq!(
            sfn_scope(
                "GetActivityTask",
                &ScopeFields::of(
                    json!({"activityArn": "arn:aws:states:r:1:activity:ops--x"})
                        .to_string()
                        .as_bytes()
                ),
                &token_of
            ),
            SfnScope::Namespace("ops".into())
        );
        assert_eq!(
            sfn_scope(
                "SendTaskSuccess",
                &ScopeFields::of(json!({"taskToken": "tok"}).to_string().as_bytes()),
                &token_of
            ),
            SfnScope::Namespace("billing".into())
        );
        assert_eq!(
            sfn_scope(
                "SendTaskFailure",
                &ScopeFields::of(json!({"taskToken": "gone"}).to_string().as_bytes()),
                &token_of
            ),
            SfnScope::AnyKey
        );
        assert_eq!(
            sfn_scope(
                "CreateActivity",
                &ScopeFields::of(json!({"name": "plain"}).to_string().as_bytes()),
                &token_of
            ),
            SfnScope::Unrestricted
        );
        assert_eq!(
            sfn_scope(
                "StartExecution",
                &ScopeFields::of(json!({}).to_string().as_bytes()),
                &token_of
            ),
            SfnScope::Unrestricted
        );
        assert_eq!(activity_namespace("--x"), None);
    }

    #[test]
    fn unknown_routes_need_admin() {
        assert_eq!(
            rest_access("PATCH", "/workflows"),
            Access::Role(Role::Admin)
        );
        assert_eq!(rest_access("GET", "/_health"), Access::Public);
        assert_eq!(
            rest_access("POST", "/workflows"),
            Access::Role(Role::Submitter)
        );
    }
}
