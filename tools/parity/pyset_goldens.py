#!/usr/bin/env python3
"""Goldens for harness/text/pyset: this CPython's own iteration order of list(set(a)), list(set(a) - set(b))
with b built by .add() (as the captioner's add_missing_class does), and list(s) after s.remove(0)
(as the label-based datasets do), on seeded random small-int inputs.

    .venv/bin/python tools/parity/pyset_goldens.py > tests/text/golden/pyset.json
"""
import json
import random
import sys

rng = random.Random(12)
cases = []
for n in range(600):
    hi = rng.choice([21, 60, 81, 151, 300])
    a = [rng.randrange(0, hi) for _ in range(rng.randrange(0, 40 if n % 5 == 0 else 12))]
    b = set()
    b_order = []
    for x in rng.sample(a, min(len(a), rng.randrange(0, 8))) + [rng.randrange(0, hi) for _ in range(rng.randrange(0, 3))]:
        b.add(x)
        b_order.append(x)
    s = set(a)
    with_zero = set()
    for x in [0] + a:
        with_zero.add(x)
    with_zero.remove(0)
    cases.append({"a": a, "b": b_order, "set_a": list(s), "diff": list(set(a) - b),
                  "minus0": list(with_zero)})
json.dump({"python": sys.version.split()[0], "cases": cases}, sys.stdout, separators=(",", ":"))
print()
