#!/bin/sh
# it_layout.sh — the include arrows of the C tree point one way (scripts/layout_check.py).
here=$(cd "$(dirname "$0")" && pwd)
exec /usr/bin/python3 "$here/../scripts/layout_check.py"
