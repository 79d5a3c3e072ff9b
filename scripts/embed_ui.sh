#!/bin/sh
# Emits a C file holding every file of the page's folder (ui/, flat) as a table of
# struct api_ui_asset (api/api_ui.h): name, content type, bytes. The page works with no file at
# run time and no other origin, like GET /openapi.json. Hidden files (editor droppings) are not
# part of the page: the glob leaves them out. Refuses (exit 1) a name that is not [A-Za-z0-9._-],
# a type it does not know, and a total above UI_MAX_BYTES: the page stays small
# on purpose (every byte is shipped to every analyst's browser and audited by whoever deploys it).
set -eu
dir=$1; max=$2
total=0
list=$(mktemp)
trap 'rm -f "$list"' EXIT
for f in "$dir"/*; do
  [ -f "$f" ] || continue
  total=$((total + $(wc -c < "$f")))
done
if [ "$total" -gt "$max" ]; then
  echo "embed_ui.sh: $dir holds $total bytes, over UI_MAX_BYTES ($max)" >&2; exit 1
fi
printf '#include "api_ui.h"\n'
n=0
for f in "$dir"/*; do
  [ -f "$f" ] || continue
  base=$(basename "$f")
  case "$base" in
    *[!A-Za-z0-9._-]*) echo "embed_ui.sh: $base: a page file name is [A-Za-z0-9._-]" >&2; exit 1 ;;
  esac
  case "$base" in
    *.html) type="text/html; charset=utf-8" ;;
    *.css)  type="text/css; charset=utf-8" ;;
    *.js)   type="text/javascript; charset=utf-8" ;;
    *.svg)  type="image/svg+xml" ;;
    *.png)  type="image/png" ;;
    *.ico)  type="image/x-icon" ;;
    *.txt)  type="text/plain; charset=utf-8" ;;
    *) echo "embed_ui.sh: $base: no content type for this extension" >&2; exit 1 ;;
  esac
  printf 'static const unsigned char a%d[] = {\n' "$n"
  od -An -v -tx1 "$f" | sed 's/ *\([0-9a-f][0-9a-f]\)/0x\1,/g'
  printf '0x00};\n'
  echo "$n|$base|$type|$(wc -c < "$f")" >> "$list"
  n=$((n + 1))
done
printf 'const struct api_ui_asset api_ui_assets[] = {\n'
if [ "$n" -gt 0 ]; then
  while IFS='|' read -r i base type len; do
    printf '    {"%s", "%s", a%s, %s},\n' "$base" "$type" "$i" "$len"
  done < "$list"
fi
printf '    {0, 0, 0, 0}};\nconst size_t api_ui_assets_n = %d;\nconst size_t api_ui_total_bytes = %d;\n' "$n" "$total"
