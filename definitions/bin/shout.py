#!/usr/bin/env python3
"""Worker for `shout`: input {"message": ...}; prints the message in capitals."""
import json
import sys

task = json.loads(sys.argv[-1])
print(json.dumps({"message": task["message"].upper(), "to": task.get("name")}))
