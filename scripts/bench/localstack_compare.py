"""Runs the engine benchmark's machines on LocalStack's Step Functions engine (host mode) and
prints transitions per second, for comparison with `cargo bench -p wfm-engine --bench
throughput`. Usage: python localstack_compare.py http://127.0.0.1:4566
"""
import json
import sys
import time

import boto3

endpoint = sys.argv[1]
sfn = boto3.client(
    "stepfunctions",
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id="test",
    aws_secret_access_key="test",
)


def chain(n):
    states = {}
    for i in range(n):
        states[f"S{i}"] = {"Type": "Pass", "End": True} if i + 1 == n else {"Type": "Pass", "Next": f"S{i + 1}"}
    return {"StartAt": "S0", "States": states}


def map_with_choice():
    return {"StartAt": "M", "States": {"M": {"Type": "Map", "ItemsPath": "$.items", "End": True,
        "ItemProcessor": {"StartAt": "C", "States": {
            "C": {"Type": "Choice", "Choices": [{"Variable": "$", "NumericGreaterThan": 500, "Next": "Big"}], "Default": "Small"},
            "Big": {"Type": "Pass", "Result": "big", "End": True},
            "Small": {"Type": "Pass", "Result": "small", "End": True}}}}}}


def parallel(n):
    branches = [{"StartAt": "B", "States": {"B": {"Type": "Pass", "Result": i, "End": True}}} for i in range(n)]
    return {"StartAt": "P", "States": {"P": {"Type": "Parallel", "Branches": branches, "End": True}}}


cases = [
    ("chain-100-pass", chain(100), {}, 10, 100),
    ("map-1000-choice", map_with_choice(), {"items": list(range(1000))}, 1, 1 + 1000 * 2),
    ("parallel-10", parallel(10), {}, 20, 11),
]
print(f"{'machine':<18} {'engine':<12} {'executions':>10} {'transitions/s':>14}")
for name, definition, payload, executions, per in cases:
    arn = sfn.create_state_machine(name=name, definition=json.dumps(definition),
                                   roleArn="arn:aws:iam::000000000000:role/bench")["stateMachineArn"]
    start = time.monotonic()
    arns = [sfn.start_execution(stateMachineArn=arn, input=json.dumps(payload))["executionArn"] for _ in range(executions)]
    for execution in arns:
        while True:
            status = sfn.describe_execution(executionArn=execution)["status"]
            if status != "RUNNING":
                assert status == "SUCCEEDED", status
                break
            time.sleep(0.01)
    took = time.monotonic() - start
    print(f"{name:<18} {'localstack':<12} {executions:>10} {executions * per / took:>14.0f}")
