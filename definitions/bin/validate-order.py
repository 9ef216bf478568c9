#!/usr/bin/env python3
"""Worker for `validate-order`: checks {"sku", "quantity"}.

A missing sku is an error of the task itself (exit 1 with an error name on stdout); a quantity
outside 1..100 is a valid answer that the Choice state sends to the Fail state.
"""
import json
import sys

order = json.loads(sys.argv[-1])
if not order.get("sku"):
    print("order has no sku", file=sys.stderr)
    print(json.dumps({"error": "InvalidOrder", "cause": "the order has no sku"}))
    sys.exit(1)
quantity = order.get("quantity", 0)
valid = isinstance(quantity, int) and 1 <= quantity <= 100
print(json.dumps({"valid": valid, "quantity": quantity}))
