"""Drives the embedded engine's /sfn endpoint with boto3, as a Python worker would.

Usage: python boto3_worker.py http://127.0.0.1:PORT/sfn
Exits non-zero (with the reason) on the first deviation.
"""
import json
import sys

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

endpoint = sys.argv[1]
sfn = boto3.client(
    "stepfunctions",
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id="test",
    aws_secret_access_key="test",
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

print("boto3 ok")
