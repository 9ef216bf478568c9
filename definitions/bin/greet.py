#!/usr/bin/env python3
"""Worker for `greet`: input {"name": ...}; prints {"message": "Hello, NAME!"}."""
import json
import sys

task = json.loads(sys.argv[-1])
name = task.get("name", "world")
print(f"greeting {name}", file=sys.stderr)
print(json.dumps({"message": f"Hello, {name}!"}))
