#!/usr/bin/python3
"""layout_check.py — the include arrows of the C tree point one way.

Checks, over cmd/, service/ and api/ (quoted includes, resolved as the Makefile's -Iservice -Iapi do):
  1. no header includes itself through other headers (an include cycle);
  2. service/ never includes a header of api/ or cmd/ (the engine knows nothing of HTTP);
  3. nothing includes a file of cmd/ (the entry point sits above both folders).
Prints `ok - name` / `not ok - name`; exits 1 when a check fails. Run by `make lint` and tests/it_layout.sh.
"""
import glob
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEARCH = ["service", "api"]
INC = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
failures = 0


def report(name, cond, detail=""):
    global failures
    print(("ok - " if cond else "not ok - ") + name + ("" if cond or not detail else " # " + detail))
    failures += not cond


def resolve(src, name):
    here = os.path.join(os.path.dirname(src), name)
    if os.path.exists(os.path.join(ROOT, here)):
        return os.path.normpath(here)
    for d in SEARCH:
        p = os.path.join(d, name)
        if os.path.exists(os.path.join(ROOT, p)):
            return p
    return None  # generated (build/) or a system header in quotes


files = sorted(os.path.relpath(p, ROOT) for pat in ("cmd/*.c", "service/*.[ch]", "api/*.[ch]")
               for p in glob.glob(os.path.join(ROOT, pat)))
edges = {}
for f in files:
    text = open(os.path.join(ROOT, f), encoding="utf-8").read()
    edges[f] = [r for r in (resolve(f, n) for n in INC.findall(text)) if r]

# 1. cycles among headers (depth-first search with colours)
state, cycle = {}, []


def visit(n, path):
    state[n] = 1
    for m in edges.get(n, []):
        if not m.endswith(".h"):
            continue
        if state.get(m) == 1:
            cycle.append(" -> ".join(path[path.index(m):] + [m]) if m in path else n + " -> " + m)
        elif not state.get(m):
            visit(m, path + [m])
    state[n] = 2


for h in (f for f in files if f.endswith(".h")):
    if not state.get(h):
        visit(h, [h])
report("no include cycle among the %d headers" % sum(f.endswith(".h") for f in files), not cycle, "; ".join(cycle))

up = ["%s includes %s" % (f, t) for f in files if f.startswith("service/") for t in edges[f]
      if t.startswith(("api/", "cmd/"))]
report("service/ includes nothing of api/ or cmd/", not up, "; ".join(up))
cmd = ["%s includes %s" % (f, t) for f in files for t in edges[f] if t.startswith("cmd/")]
report("nothing includes cmd/", not cmd, "; ".join(cmd))
sys.exit(1 if failures else 0)
