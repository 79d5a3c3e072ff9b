#!/bin/sh
# it_page.sh — the findings page's files are served from the binary (issue 13): every file of ui/
# byte for byte with its type, GET / redirects to /ui/, an unknown file is a 404 error document;
# every reply carries the security headers, and only the page's own files get a CSP that lets
# script run (their own, never inline). The build refuses a page over UI_MAX_BYTES. The page's
# workload filter offers exactly the API's kinds. The browser tests are tests/it_browser.sh.
. "$(dirname "$0")/lib.sh"
make_tmp
serve_start CREDWATCH_READ_TOKENS=rd-secret-0123456789abcdef || { nok "server starts"; exit 1; }
base=http://127.0.0.1:$SERVE_PORT
UI_CSP="default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
DATA_CSP="default-src 'none'; frame-ancestors 'none'"

# header NAME FILE: the value of header NAME in a curl -D dump (last one, CR removed)
header() { tr -d '\r' <"$2" | sed -n "s/^$1: //Ip" | tail -n 1; }

# Every file of ui/ (no token: the files hold no data), exactly as in the tree.
for f in "$root"/ui/*; do
  name=$(basename "$f")
  case "$name" in
    *.html) want="text/html; charset=utf-8" ;; *.css) want="text/css; charset=utf-8" ;;
    *.js) want="text/javascript; charset=utf-8" ;; *.svg) want="image/svg+xml" ;; *.png) want="image/png" ;;
    *.ico) want="image/x-icon" ;; *.txt) want="text/plain; charset=utf-8" ;; *) want=unknown ;;
  esac
  code=$(curl -s -o "$TEST_TMP/body" -D "$TEST_TMP/h" -w '%{http_code}' "$base/ui/$name")
  check "GET /ui/$name: 200 without a token" [ "$code" = 200 ]
  check "GET /ui/$name: the file's bytes" cmp -s "$f" "$TEST_TMP/body"
  check "GET /ui/$name: Content-Type $want" [ "$(header Content-Type "$TEST_TMP/h")" = "$want" ]
  check "GET /ui/$name: the page's CSP" [ "$(header Content-Security-Policy "$TEST_TMP/h")" = "$UI_CSP" ]
  check "GET /ui/$name: nosniff" [ "$(header X-Content-Type-Options "$TEST_TMP/h")" = nosniff ]
  check "GET /ui/$name: never framed" [ "$(header X-Frame-Options "$TEST_TMP/h")" = DENY ]
  check "GET /ui/$name: no referrer" [ "$(header Referrer-Policy "$TEST_TMP/h")" = no-referrer ]
done

code=$(curl -s -o "$TEST_TMP/body" -D "$TEST_TMP/h" -w '%{http_code}' "$base/ui/")
check "GET /ui/ is index.html" cmp -s "$root/ui/index.html" "$TEST_TMP/body"
# The redirects are relative ("ui/" from "/" and from "/ui" is /ui/; under a proxy's prefix too).
for path in / /ui; do
  code=$(curl -s -o /dev/null -D "$TEST_TMP/h" -w '%{http_code}' "$base$path")
  check "GET $path: 302" [ "$code" = 302 ]
  check "GET $path: Location ui/" [ "$(header Location "$TEST_TMP/h")" = ui/ ]
done
check "curl -L from / ends at the page" sh -c "curl -sL '$base/' | cmp -s '$root/ui/index.html' -"
long=$(printf 'a%.0s' $(seq 1 300))
for path in /ui/nope.js /ui/..%2Fopenapi.json /ui/index.html/x /ui/.hidden "/ui/$long"; do
  code=$(curl -s -o "$TEST_TMP/body" -D "$TEST_TMP/h" -w '%{http_code}' "$base$path")
  path=$(printf %.40s "$path")  # the names below: a 300-byte one cut
  check "GET $path: 404" [ "$code" = 404 ]
  check "GET $path: an error document, not the page" grep -q '"code":"not_found"' "$TEST_TMP/body"
  check "GET $path: the data CSP (no script)" [ "$(header Content-Security-Policy "$TEST_TMP/h")" = "$DATA_CSP" ]
done
# A 401 challenges Basic too (a person opening /v1/findings gets the browser's login dialog), but
# not a script that says it is one: the page asks for the token itself.
curl -s -o /dev/null -D "$TEST_TMP/h" "$base/v1/findings"
check "401: Bearer and Basic challenges" [ "$(tr -d '\r' <"$TEST_TMP/h" | grep -ci '^WWW-Authenticate: \(Bearer\|Basic\)')" = 2 ]
curl -s -o /dev/null -D "$TEST_TMP/h" -H 'X-Requested-With: XMLHttpRequest' "$base/v1/findings"
check "401 to a script: Bearer only, no Basic (no login dialog)" \
  [ "$(tr -d '\r' <"$TEST_TMP/h" | grep -i '^WWW-Authenticate:' | tr '\n' ' ')" = 'WWW-Authenticate: Bearer realm="credwatch" ' ]
code=$(curl -s -o /dev/null -X POST -D "$TEST_TMP/h" -w '%{http_code}' "$base/ui/")
check "POST /ui/: 405" [ "$code" = 405 ]

# Data replies (JSON, metrics, errors) get the policy that runs nothing.
for path in /healthz /metrics /openapi.json /v1/findings; do
  curl -s -o /dev/null -D "$TEST_TMP/h" "$base$path"
  check "GET $path: the data CSP" [ "$(header Content-Security-Policy "$TEST_TMP/h")" = "$DATA_CSP" ]
  check "GET $path: nosniff" [ "$(header X-Content-Type-Options "$TEST_TMP/h")" = nosniff ]
done

# The page's workload filter offers exactly the kinds the API's ?workload= accepts (served openapi.json),
# its queue sends the parameter, and its texts name each kind.
curl -s -o "$TEST_TMP/openapi.json" "$base/openapi.json"
curl -s -o "$TEST_TMP/dom.js" "$base/ui/dom.js"
curl -s -o "$TEST_TMP/queue.js" "$base/ui/queue.js"
check "the page's workload kinds are the API's workload enum" "$PY" - "$TEST_TMP/openapi.json" "$TEST_TMP/dom.js" <<'PYEOF'
import json, re, sys
spec = json.load(open(sys.argv[1]))
enum = [p["schema"]["enum"] for p in spec["paths"]["/v1/findings"]["get"]["parameters"] if p.get("name") == "workload"][0]
line = [l for l in open(sys.argv[2]) if l.startswith("export const WORKLOADS = ")][0]
kinds = re.findall(r"\['([a-z0-9]+)', '[^']+'\]", line)
sys.exit(0 if kinds == enum else 1)
PYEOF
check "the queue sends the workload filter as ?workload=" grep -q "workload: filters.workload" "$TEST_TMP/queue.js"
check "the queue has a workload select next to severity" grep -q "field('Severity', inputs.severity), field('Workload', inputs.workload)" "$TEST_TMP/queue.js"

# The bound: the embedding script refuses a page over the limit, and a file it cannot type.
mkdir -p "$TEST_TMP/ui"
head -c 2000 /dev/zero >"$TEST_TMP/ui/big.js"
if sh "$root/scripts/embed_ui.sh" "$TEST_TMP/ui" 1999 >/dev/null 2>"$TEST_TMP/err"; then
  nok "a page over the bound is refused"
else
  check "a page over the bound is refused, naming it" grep -q "over UI_MAX_BYTES" "$TEST_TMP/err"
fi
check "a page at the bound is embedded" sh "$root/scripts/embed_ui.sh" "$TEST_TMP/ui" 2000 >/dev/null
: >"$TEST_TMP/ui/x.exe"
if sh "$root/scripts/embed_ui.sh" "$TEST_TMP/ui" 99999 >/dev/null 2>"$TEST_TMP/err"; then
  nok "an untyped file is refused"
else
  check "an untyped file is refused, naming it" grep -q "x.exe" "$TEST_TMP/err"
fi
total=$(cat "$root"/ui/* | wc -c)
max=$(sed -n 's/^#define UI_MAX_BYTES \([0-9]*\).*/\1/p' "$root/api/api_ui.h")
echo "# the page: $total bytes of UI_MAX_BYTES $max"
check "the page is within UI_MAX_BYTES" [ "$total" -le "$max" ]
[ $fails -eq 0 ]
