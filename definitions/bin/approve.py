#!/usr/bin/env python3
"""Answers the pending approval requests filed by request-approval: SendTaskSuccess (or,
with --reject, SendTaskFailure with the error Rejected) on the service's Step Functions
endpoint. Usage: python3 definitions/bin/approve.py [--reject] [--endpoint URL]"""
import argparse
import glob
import json
import os
import tempfile
import urllib.request

parser = argparse.ArgumentParser()
parser.add_argument("--reject", action="store_true")
parser.add_argument("--endpoint", default="http://127.0.0.1:8080/sfn")
args = parser.parse_args()


def call(operation, body):
    request = urllib.request.Request(
        args.endpoint,
        data=json.dumps(body).encode(),
        headers={
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": "AWSStepFunctions." + operation,
        },
    )
    with urllib.request.urlopen(request) as response:
        return response.read()


files = sorted(glob.glob(os.path.join(tempfile.gettempdir(), "wfm-approvals", "*.json")))
for path in files:
    with open(path) as f:
        token = json.load(f)["token"]
    if args.reject:
        call("SendTaskFailure", {"taskToken": token, "error": "Rejected", "cause": "not now"})
    else:
        call("SendTaskSuccess", {"taskToken": token, "output": json.dumps({"approved": True})})
    os.remove(path)
    print(("rejected " if args.reject else "approved ") + os.path.basename(path))
if not files:
    print("no pending approvals")
