#!/usr/bin/env python3
"""Function `request-approval`: payload {"token", "request"}. Files the request where
approve.py finds it (a real one would email someone, or post to a chat); the workflow waits
until the token is answered."""
import json
import os
import sys
import tempfile

payload = json.loads(sys.argv[-1])
pending = os.path.join(tempfile.gettempdir(), "wfm-approvals")
os.makedirs(pending, exist_ok=True)
name = payload["token"][-16:]
with open(os.path.join(pending, name + ".json"), "w") as f:
    json.dump(payload, f)
print(json.dumps({"filed": name}))
