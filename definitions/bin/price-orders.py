#!/usr/bin/env python3
"""Function `price-orders`: payload {"checked": [{"accepted", "order"}]}; returns the total
price of the accepted orders (10 per item) and how many there were."""
import json
import sys

checked = json.loads(sys.argv[-1]).get("checked", [])
accepted = [c["order"] for c in checked if c.get("accepted")]
total = sum(10 * o.get("validation", {}).get("quantity", 0) for o in accepted)
print(json.dumps({"total": total, "accepted": len(accepted)}))
