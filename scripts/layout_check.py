#!/usr/bin/python3
"""layout_check.py — the include arrows of the C tree point one way.

Checks, over cmd/, service/, api/ and sink/ (quoted includes, resolved as the Makefile's -Iservice -Iapi -Isink do):
  1. no header includes itself through other headers (an include cycle);
  2. service/ never includes a header of api/, sink/ or cmd/ (the engine knows nothing of HTTP or delivery);
     sink/ never includes api/ or cmd/ (sinks only deliver: they know the finding document, not the server);
  3. nothing includes a file of cmd/ (the entry point sits above both folders);
  4. no call cycle between source files: from the symbol tables of the built objects ($BUILD/obj,
     `nm`), file A depends on file B when A calls or reads a symbol B defines; the graph has no
     cycle, so every arrow points one way (the checks of 1-3 are about headers, this one about code);
  5. no function longer than FUNC_LINES_MAX lines, outside the named exceptions (tables).
Prints `ok - name` / `not ok - name`; exits 1 when a check fails. Run by `make lint` and tests/it_layout.sh.
"""
import glob
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEARCH = ["service", "api", "sink"]
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


files = sorted(os.path.relpath(p, ROOT) for pat in ("cmd/*.c", "service/*.[ch]", "api/*.[ch]", "sink/*.[ch]")
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
      if t.startswith(("api/", "sink/", "cmd/"))]
report("service/ includes nothing of api/, sink/ or cmd/", not up, "; ".join(up))
down = ["%s includes %s" % (f, t) for f in files if f.startswith("sink/") for t in edges[f]
        if t.startswith(("api/", "cmd/"))]
report("sink/ includes nothing of api/ or cmd/", not down, "; ".join(down))
cmd = ["%s includes %s" % (f, t) for f in files for t in edges[f] if t.startswith("cmd/")]
report("nothing includes cmd/", not cmd, "; ".join(cmd))

# 4. call cycles between files, from the objects' symbol tables


def call_cycles(calls):
    """The strongly connected components of more than one file (Tarjan): each is a call cycle."""
    index, low, stack, on, comps, counter = {}, {}, [], set(), [], [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in calls.get(v, []):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(calls):
        if v not in index:
            strong(v)
    return comps


# 5. function length. A definition starts at a line in column 0 that names a function and ends at
# the first `}` in column 0. Tables (a switch that maps names to values) would be the exceptions,
# each with its reason; there are none today.
FUNC_LINES_MAX = 80
FUNC_EXCEPTIONS = {}
DEF = re.compile(r"^(?:__attribute__\(\(.*?\)\)\s+)?(?:static\s+)?(?:inline\s+)?[A-Za-z_][\w\s\*]*?\b([a-z_][a-z0-9_]*)\s*\(")


def long_functions(name_of_file, lines):
    found, name, start = [], None, 0
    for n, line in enumerate(lines, 1):
        m = DEF.match(line)
        if m and not line.rstrip().endswith(";"):
            name, start = m.group(1), n
        elif line.startswith("}") and name:
            if n - start > FUNC_LINES_MAX and name not in FUNC_EXCEPTIONS:
                found.append("%s:%d %s (%d lines)" % (name_of_file, start, name, n - start))
            name = None
    return found


if "--self-test" in sys.argv:
    # The two checks can fail: a three-file cycle and an 81-line function are found, a chain and an
    # 80-line function are not.
    report("self-test: a cycle is found", call_cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == [["a", "b", "c"]])
    report("self-test: a chain is not a cycle", call_cycles({"a": ["b"], "b": ["c"], "c": []}) == [])
    body = lambda n: ["static int f(void)\n", "{\n"] + ["    x++;\n"] * (n - 2) + ["}\n"]
    report("self-test: an 81-line function is found", len(long_functions("t.c", body(81))) == 1)
    report("self-test: an 80-line function passes", long_functions("t.c", body(80)) == [])
    attr = ["__attribute__((format(printf, 1, 2))) static void g(const char *f, ...)\n"] + body(81)[1:]
    report("self-test: a function behind __attribute__ is measured", len(long_functions("t.c", attr)) == 1)
    sys.exit(1 if failures else 0)

BUILD = os.environ.get("BUILD", "build")
objs = [o for d in ("cmd", "service", "api", "sink") for o in sorted(glob.glob(os.path.join(ROOT, BUILD, "obj", d, "*.o")))]
if not objs:
    report("no call cycle between source files", False, "no objects under %s/obj: build first" % BUILD)
else:
    defined, used = {}, {}
    for o in objs:
        src = os.path.relpath(o, os.path.join(ROOT, BUILD, "obj"))[:-2] + ".c"
        out = subprocess.run(["nm", "-P", o], capture_output=True, text=True, check=True).stdout
        used[src] = set()
        for line in out.splitlines():
            parts = line.split()
            if len(parts) < 2:
                continue
            if parts[1] in "TDBRC":
                defined[parts[0]] = src
            elif parts[1] == "U":
                used[src].add(parts[0])
    calls = {f: sorted({defined[s] for s in u if defined.get(s, f) != f}) for f, u in used.items()}
    comps = call_cycles(calls)
    detail = ["%s -> %s (%s)" % (a, b, ", ".join(sorted(s for s in used[a] if defined.get(s) == b)[:3]))
              for comp in comps for a in comp for b in calls[a] if b in comp]
    report("no call cycle between the %d source files" % len(calls), not comps, "; ".join(detail))

long_fns = [x for f in files if f.endswith(".c")
            for x in long_functions(f, open(os.path.join(ROOT, f), encoding="utf-8"))]
report("no function over %d lines" % FUNC_LINES_MAX, not long_fns, "; ".join(long_fns))
sys.exit(1 if failures else 0)
