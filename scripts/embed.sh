#!/bin/sh
# Emits a C file defining `const char NAME[]` (NUL-terminated) and `const size_t NAME_len`
# holding the bytes of FILE. Used to compile openapi/openapi.json into the binary.
set -eu
file=$1; name=$2
printf '#include <stddef.h>\nconst char %s[] = {\n' "$name"
od -An -v -tx1 "$file" | sed 's/ *\([0-9a-f][0-9a-f]\)/0x\1,/g'
printf '0x00};\nconst size_t %s_len = sizeof(%s) - 1;\n' "$name" "$name"
