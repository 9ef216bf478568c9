"""Versions, aliases and tags on the embedded engine's /sfn endpoint, through boto3, with
the error codes AWS answers for bad input.

Usage: python boto3_catalog.py http://127.0.0.1:PORT/sfn
Exits non-zero (with the reason) on the first deviation; prints "catalog ok" at the end.
"""
import json
import sys
import time

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

sfn = boto3.client(
    "stepfunctions",
    endpoint_url=sys.argv[1],
    region_name="us-east-1",
    aws_access_key_id="test",
    aws_secret_access_key="test",
    config=Config(retries={"max_attempts": 1}, inject_host_prefix=False),
)
ROLE = "arn:aws:iam::123456789012:role/test"


def definition(result):
    return json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": result, "End": True}}})


def fails(code, call, **kwargs):
    try:
        call(**kwargs)
    except ClientError as e:
        got = e.response["Error"]["Code"]
        assert got == code, f"{call.__name__}: {got} != {code}: {e}"
        return
    raise AssertionError(f"{call.__name__} did not fail with {code}")


def run(arn):
    ex = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    for _ in range(200):
        d = sfn.describe_execution(executionArn=ex)
        if d["status"] != "RUNNING":
            return d
        time.sleep(0.02)
    raise AssertionError(f"{ex} did not end")


created = sfn.create_state_machine(
    name="catalog", definition=definition("one"), roleArn=ROLE, publish=True,
    versionDescription="first", tags=[{"key": "team", "value": "payments"}],
)
machine, v1 = created["stateMachineArn"], created["stateMachineVersionArn"]
assert v1 == machine + ":1", v1
first_revision = sfn.describe_state_machine(stateMachineArn=machine)["revisionId"]

updated = sfn.update_state_machine(stateMachineArn=machine, definition=definition("two"), publish=True,
                                   versionDescription="second")
v2 = updated["stateMachineVersionArn"]
assert v2 == machine + ":2", v2
assert updated["revisionId"] != first_revision
# Publishing the same revision again gives the same version; a stale revision id is refused.
assert sfn.publish_state_machine_version(stateMachineArn=machine)["stateMachineVersionArn"] == v2
fails("ConflictException", sfn.publish_state_machine_version, stateMachineArn=machine, revisionId=first_revision)

versions = [v["stateMachineVersionArn"] for v in sfn.list_state_machine_versions(stateMachineArn=machine)["stateMachineVersions"]]
assert versions == [v2, v1], versions
# A version keeps the role it was published with.
sfn.update_state_machine(stateMachineArn=machine, roleArn=ROLE + "-new")
assert sfn.describe_state_machine(stateMachineArn=machine)["roleArn"] == ROLE + "-new"
d1 = sfn.describe_state_machine(stateMachineArn=v1)
assert d1["roleArn"] == ROLE, d1
assert json.loads(d1["definition"])["States"]["P"]["Result"] == "one", d1
assert d1["description"] == "first", d1

# A version runs its own definition; the machine runs the latest.
assert json.loads(run(v1)["output"]) == "one"
latest = run(machine)
assert json.loads(latest["output"]) == "two"
assert "stateMachineVersionArn" not in latest

# An alias routes by weight; its executions name the version and the alias.
alias = sfn.create_state_machine_alias(
    name="live", routingConfiguration=[{"stateMachineVersionArn": v1, "weight": 100}])["stateMachineAliasArn"]
assert alias == machine + ":live", alias
d = run(alias)
assert json.loads(d["output"]) == "one" and d["stateMachineAliasArn"] == alias and d["stateMachineVersionArn"] == v1, d
for_execution = sfn.describe_state_machine_for_execution(executionArn=d["executionArn"])
assert json.loads(for_execution["definition"])["States"]["P"]["Result"] == "one", for_execution
assert for_execution["stateMachineArn"] == machine, for_execution
sfn.update_state_machine_alias(stateMachineAliasArn=alias, routingConfiguration=[
    {"stateMachineVersionArn": v1, "weight": 50}, {"stateMachineVersionArn": v2, "weight": 50}])
outputs = {json.loads(run(alias)["output"]) for _ in range(30)}
assert outputs == {"one", "two"}, outputs
# ListExecutions by an alias's ARN lists the executions started through it.
through_alias = sfn.list_executions(stateMachineArn=alias, maxResults=1000)["executions"]
assert len(through_alias) == 31, len(through_alias)
everything = sfn.list_executions(stateMachineArn=machine, maxResults=1000)["executions"]
assert len(everything) == 33, len(everything)
described = sfn.describe_state_machine_alias(stateMachineAliasArn=alias)
assert len(described["routingConfiguration"]) == 2, described
aliases = sfn.list_state_machine_aliases(stateMachineArn=machine)["stateMachineAliases"]
assert [a["stateMachineAliasArn"] for a in aliases] == [alias], aliases

fails("ValidationException", sfn.create_state_machine_alias, name="bad",
      routingConfiguration=[{"stateMachineVersionArn": v1, "weight": 60}])
fails("ResourceNotFound", sfn.create_state_machine_alias, name="ghost",
      routingConfiguration=[{"stateMachineVersionArn": machine + ":9", "weight": 100}])
fails("ConflictException", sfn.create_state_machine_alias, name="live",
      routingConfiguration=[{"stateMachineVersionArn": v2, "weight": 100}])
fails("ConflictException", sfn.delete_state_machine_version, stateMachineVersionArn=v1)
fails("ResourceNotFound", sfn.describe_state_machine_alias, stateMachineAliasArn=machine + ":nope")
fails("StateMachineDoesNotExist", sfn.start_execution, stateMachineArn=machine + ":9")

sfn.delete_state_machine_alias(stateMachineAliasArn=alias)
sfn.delete_state_machine_version(stateMachineVersionArn=v1)
versions = [v["stateMachineVersionArn"] for v in sfn.list_state_machine_versions(stateMachineArn=machine)["stateMachineVersions"]]
assert versions == [v2], versions

# Version numbers are never given twice, even after the latest is deleted.
gone = sfn.create_state_machine(name="catalog-gone", definition=definition("a"), roleArn=ROLE,
                                publish=True, tags=[{"key": "k", "value": "v"}])
g1 = gone["stateMachineVersionArn"]
g2 = sfn.update_state_machine(stateMachineArn=gone["stateMachineArn"], definition=definition("b"),
                              publish=True)["stateMachineVersionArn"]
sfn.delete_state_machine_version(stateMachineVersionArn=g2)
g3 = sfn.update_state_machine(stateMachineArn=gone["stateMachineArn"], definition=definition("c"),
                              publish=True)["stateMachineVersionArn"]
assert (g1, g2, g3) == tuple(gone["stateMachineArn"] + f":{n}" for n in (1, 2, 3)), (g1, g2, g3)
fails("ResourceNotFound", sfn.describe_state_machine, stateMachineArn=g2)
# "01" is not version 1.
fails("StateMachineDoesNotExist", sfn.start_execution, stateMachineArn=gone["stateMachineArn"] + ":01")
# A deleted state machine's versions, aliases and tags go with it.
sfn.create_state_machine_alias(name="gone-live",
                               routingConfiguration=[{"stateMachineVersionArn": g1, "weight": 100}])
sfn.delete_state_machine(stateMachineArn=gone["stateMachineArn"])
fails("StateMachineDoesNotExist", sfn.start_execution, stateMachineArn=g1)
fails("StateMachineDoesNotExist", sfn.start_execution, stateMachineArn=gone["stateMachineArn"] + ":gone-live")
fails("ResourceNotFound", sfn.list_tags_for_resource, resourceArn=gone["stateMachineArn"])
# Bad tags are refused before anything is created.
fails("TooManyTags", sfn.create_state_machine, name="catalog-badtags", definition=definition("x"),
      roleArn=ROLE, tags=[{"key": f"k{i}", "value": "v"} for i in range(51)])
fails("StateMachineDoesNotExist", sfn.describe_state_machine,
      stateMachineArn=machine.replace(":catalog", ":catalog-badtags"))

# Tags.
assert sfn.list_tags_for_resource(resourceArn=machine)["tags"] == [{"key": "team", "value": "payments"}]
sfn.tag_resource(resourceArn=machine, tags=[{"key": "env", "value": "dev"}, {"key": "team", "value": "core"}])
tags = sfn.list_tags_for_resource(resourceArn=machine)["tags"]
assert tags == [{"key": "env", "value": "dev"}, {"key": "team", "value": "core"}], tags
sfn.untag_resource(resourceArn=machine, tagKeys=["env"])
assert sfn.list_tags_for_resource(resourceArn=machine)["tags"] == [{"key": "team", "value": "core"}]
activity = sfn.create_activity(name="catalog-activity", tags=[{"key": "a", "value": "b"}])["activityArn"]
assert sfn.list_tags_for_resource(resourceArn=activity)["tags"] == [{"key": "a", "value": "b"}]
fails("ResourceNotFound", sfn.tag_resource, resourceArn=machine + "-nope", tags=[{"key": "k", "value": "v"}])
fails("TooManyTags", sfn.tag_resource, resourceArn=machine,
      tags=[{"key": f"k{i}", "value": "v"} for i in range(60)])
# GetExecutionHistory without the execution's data.
events = sfn.get_execution_history(executionArn=latest["executionArn"], includeExecutionData=False)["events"]
started = [e for e in events if e["type"] == "ExecutionStarted"][0]["executionStartedEventDetails"]
assert "input" not in started and "roleArn" in started, started
events = sfn.get_execution_history(executionArn=latest["executionArn"])["events"]
assert "input" in [e for e in events if e["type"] == "ExecutionStarted"][0]["executionStartedEventDetails"]

# EXPRESS executions have AWS's ARN form.
fast = sfn.create_state_machine(name="catalog-express", definition=definition("x"), roleArn=ROLE,
                                type="EXPRESS")["stateMachineArn"]
sync = sfn.start_sync_execution(stateMachineArn=fast, name="quick")
assert sync["executionArn"].startswith(
    "arn:aws:states:us-east-1:123456789012:express:catalog-express:quick:"), sync["executionArn"]
assert sync["status"] == "SUCCEEDED", sync

# ValidateStateMachineDefinition.
ok = sfn.validate_state_machine_definition(definition=definition("x"))
assert ok["result"] == "OK" and ok["diagnostics"] == [], ok
bad = sfn.validate_state_machine_definition(definition=json.dumps(
    {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Nowhere"}}}))
assert bad["result"] == "FAIL" and bad["diagnostics"][0]["severity"] == "ERROR", bad
assert bad["diagnostics"][0]["location"].startswith("/States/A"), bad
express = sfn.validate_state_machine_definition(type="EXPRESS", definition=json.dumps(
    {"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": activity, "End": True}}}))
assert express["diagnostics"][0]["code"] == "SCHEMA_VALIDATION_FAILED", express
assert express["diagnostics"][0]["location"] == "/States/A/Resource", express
print("catalog ok")
