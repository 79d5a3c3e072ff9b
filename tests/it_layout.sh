#!/bin/sh
# it_layout.sh — the arrows of the C tree point one way and functions stay short
# (scripts/layout_check.py): first its self-test (each check can fail), then the tree itself,
# over the objects of $BUILD (default build).
. "$(dirname "$0")/lib.sh"
"$PY" "$root/scripts/layout_check.py" --self-test || exit 1
exec "$PY" "$root/scripts/layout_check.py"
