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

/// What `operation` with `body` needs; `task_activity` finds the activity ARN of a task token.
pub fn sfn_scope(
    operation: &str,
    body: &serde_json::Value,
    task_activity: &dyn Fn(&str) -> Option<String>,
) -> SfnScope {
    let field = |name: &str| body.get(name).and_then(|v| v.as_str()).unwrap_or("");
    match operation {
        "CreateActivity" => scope_of_activity(field("name")),
        "GetActivityTask" | "DescribeActivity" | "DeleteActivity" => {
            scope_of_activity(activity_name_of_arn(field("activityArn")))
        }
        "SendTaskSuccess" | "SendTaskFailure" | "SendTaskHeartbeat" => {
            match task_activity(field("taskToken")) {
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
                &json!({"name": "billing--charge"}),
                &token_of
            ),
            SfnScope::Namespace("billing".into())
        );
        assert_eq!(
            sfn_scope(
                "GetActivityTask",
                &json!({"activityArn": "arn:aws:states:r:1:activity:ops--x"}),
                &token_of
            ),
            SfnScope::Namespace("ops".into())
        );
        assert_eq!(
            sfn_scope("SendTaskSuccess", &json!({"taskToken": "tok"}), &token_of),
            SfnScope::Namespace("billing".into())
        );
        assert_eq!(
            sfn_scope("SendTaskFailure", &json!({"taskToken": "gone"}), &token_of),
            SfnScope::AnyKey
        );
        assert_eq!(
            sfn_scope("CreateActivity", &json!({"name": "plain"}), &token_of),
            SfnScope::Unrestricted
        );
        assert_eq!(
            sfn_scope("StartExecution", &json!({}), &token_of),
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
