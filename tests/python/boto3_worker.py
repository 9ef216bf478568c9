"""Drives the embedded engine's /sfn endpoint with boto3, as a Python worker would.

Usage: python boto3_worker.py http://127.0.0.1:PORT/sfn
Signs with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY when set (keys the service issued), else
with dummy credentials (a service running open accepts any).
Exits non-zero (with the reason) on the first deviation.
"""
import json
import os
import sys

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

endpoint = sys.argv[1]
sfn = boto3.client(
    "stepfunctions",
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
    aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
    config=Config(read_timeout=70, retries={"max_attempts": 1}),
)

activity = sfn.create_activity(name="boto3-activity")["activityArn"]
assert sfn.create_activity(name="boto3-activity")["activityArn"] == activity

definition = {
    "StartAt": "Work",
    "States": {"Work": {"Type": "Task", "Resource": activity, "ResultPath": "$.result", "End": True}},
}
machine = sfn.create_state_machine(
    name="boto3-machine",
    definition=json.dumps(definition),
    roleArn="arn:aws:iam::123456789012:role/test",
)["stateMachineArn"]
execution = sfn.start_execution(stateMachineArn=machine, name="boto3-run", input='{"x": 1}')["executionArn"]

task = {}
for _ in range(10):
    task = sfn.get_activity_task(activityArn=activity, workerName="boto3-worker")
    if task.get("taskToken"):
        break
assert task.get("taskToken"), "no task was handed out"
assert json.loads(task["input"]) == {"x": 1}, task["input"]
sfn.send_task_heartbeat(taskToken=task["taskToken"])
sfn.send_task_success(taskToken=task["taskToken"], output='{"y": 2}')

for _ in range(200):
    described = sfn.describe_execution(executionArn=execution)
    if described["status"] != "RUNNING":
        break
assert described["status"] == "SUCCEEDED", described
assert json.loads(described["output"]) == {"x": 1, "result": {"y": 2}}, described["output"]

history = sfn.get_execution_history(executionArn=execution, maxResults=3)
assert [e["type"] for e in history["events"]] == ["ExecutionStarted", "TaskStateEntered", "ActivityScheduled"]
rest = sfn.get_execution_history(executionArn=execution, nextToken=history["nextToken"])
assert rest["events"][-1]["type"] == "ExecutionSucceeded", rest["events"]

try:
    sfn.send_task_success(taskToken="bogus", output="{}")
    raise SystemExit("a bogus token was accepted")
except ClientError as e:
    assert e.response["Error"]["Code"] == "InvalidToken", e.response

# Listing and paging.
names = [m["name"] for m in sfn.list_state_machines()["stateMachines"]]
assert "boto3-machine" in names, names
sfn.start_execution(stateMachineArn=machine, name="boto3-run-2", input='{"x": 2}')
page = sfn.list_executions(stateMachineArn=machine, maxResults=1)
assert len(page["executions"]) == 1 and "nextToken" in page, page
rest = sfn.list_executions(stateMachineArn=machine, maxResults=1, nextToken=page["nextToken"])
assert {page["executions"][0]["name"], rest["executions"][0]["name"]} == {"boto3-run", "boto3-run-2"}
done = sfn.list_executions(stateMachineArn=machine, statusFilter="SUCCEEDED")["executions"]
assert [e["name"] for e in done] == ["boto3-run"], done

# StopExecution while the task is out: ABORTED at once, and the late token finds its task over.
task = {}
for _ in range(10):
    task = sfn.get_activity_task(activityArn=activity)
    if task.get("taskToken"):
        break
stopped = sfn.list_executions(stateMachineArn=machine, statusFilter="RUNNING")["executions"][0]["executionArn"]
sfn.stop_execution(executionArn=stopped, error="Stopped", cause="by the test")
assert sfn.describe_execution(executionArn=stopped)["status"] == "ABORTED"
try:
    sfn.send_task_success(taskToken=task["taskToken"], output="{}")
    raise SystemExit("a stopped execution's token was accepted")
except ClientError as e:
    assert e.response["Error"]["Code"] == "TaskTimedOut", e.response

# UpdateStateMachine, then an EXPRESS machine run synchronously.
new_definition = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": "updated", "End": True}}}
sfn.update_state_machine(stateMachineArn=machine, definition=json.dumps(new_definition))
assert json.loads(sfn.describe_state_machine(stateMachineArn=machine)["definition"]) == new_definition
express = sfn.create_state_machine(
    name="boto3-express",
    definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {"got.$": "$.v"}, "End": True}}}),
    roleArn="arn:aws:iam::123456789012:role/test",
    type="EXPRESS",
)["stateMachineArn"]
sync = boto3.client(
    "stepfunctions",
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
    aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
    config=Config(inject_host_prefix=False),
)
result = sync.start_sync_execution(stateMachineArn=express, input='{"v": 7}')
assert result["status"] == "SUCCEEDED" and json.loads(result["output"]) == {"got": 7}, result
try:
    sync.start_sync_execution(stateMachineArn=machine, input="{}")
    raise SystemExit("a STANDARD machine ran synchronously")
except ClientError as e:
    assert e.response["Error"]["Code"] == "StateMachineTypeNotSupported", e.response

# Activities and deletion.
assert sfn.describe_activity(activityArn=activity)["name"] == "boto3-activity"
assert activity in [a["activityArn"] for a in sfn.list_activities()["activities"]]
sfn.delete_activity(activityArn=activity)
try:
    sfn.describe_activity(activityArn=activity)
    raise SystemExit("a deleted activity was described")
except ClientError as e:
    assert e.response["Error"]["Code"] == "ActivityDoesNotExist", e.response
sfn.delete_state_machine(stateMachineArn=express)
try:
    sfn.describe_state_machine(stateMachineArn=express)
    raise SystemExit("a deleted state machine was described")
except ClientError as e:
    assert e.response["Error"]["Code"] == "StateMachineDoesNotExist", e.response

print("boto3 ok")
