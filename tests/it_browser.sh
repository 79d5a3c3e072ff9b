#!/bin/sh
# it_browser.sh — the findings page (ui/, issue 13) in a real browser: headless Chromium (Debian's
# `chromium`) driven by playwright-core (tests/browser/, pinned by its package-lock.json) against two real
# `credwatch serve` instances sharing one redis-server, all on loopback:
#   A  read and ingest tokens (the page must ask for the read token), fixtures ingested here, one webhook
#      sink posting to B's /v1/refused (a 404: every event becomes a dead letter for the sinks view);
#   B  no read token (open on loopback: the page must work without asking), the "other instance".
# tests/browser/ui_test.mjs holds the cases: the queue against GET /v1/findings (filters, cursor paging),
# a finding (summary, SVG timeline, reasons, addresses), triage seen on B, hostile strings rendered as text
# (no dialog, no request off loopback, CSP on every page response), wrong or missing token, keyboard, a
# 390 px screen, key lookup, dead letters and retry, auto refresh. Screenshots go to $BUILD/screenshots/ (not committed);
# UPDATE_DOCS_SCREENSHOT=1 also copies the finding's to docs/ui-finding.png.
# First, without a browser: ui/*.js, index.html and app.css are searched for what would turn data into
# markup or script (innerHTML, eval, string timers, inline handlers or styles, data-built URLs, ...); that
# check shows it can fail on planted samples.
# Without chromium, node/npm or the npm registry the browser part prints a SKIP with the reason
# (scripts/deps.sh test installs them). Prints `ok - name` / `not ok - name`; exits non-zero on failure.
. "$(dirname "$0")/lib.sh"
make_tmp
UI=$root/ui
BROWSER_DIR=$here/browser
CHROMIUM=${CREDWATCH_CHROMIUM:-/usr/bin/chromium}
SHOTS=$root/$BUILD/screenshots
DRIVER_LIMIT=150   # s: the whole browser run (it takes about 30 s on an idle 2-core machine)

# ---- 1. the page's source: nothing that can make markup or script from data ----------------------------
# ui_scan DIR: prints every offending line (file:line: text); fails when there is one.
ui_scan() {
  _d=$1
  _bad=$TEST_TMP/scan.out
  : >"$_bad"
  for _f in "$_d"/*.js; do
    [ -f "$_f" ] || continue
    grep -nHE -e 'innerHTML|outerHTML|insertAdjacentHTML|createContextualFragment|DOMParser|parseFromString|srcdoc' \
      -e 'document\.(write|writeln|cookie)|\beval[[:space:]]*\(|new[[:space:]]+Function\b|[^.[:alnum:]_]Function[[:space:]]*\(' \
      -e "set(Timeout|Interval)[[:space:]]*\([[:space:]]*['\"\`]" -e 'javascript:' \
      -e '\.(src|href|action|formAction|style|cssText|outerText)[[:space:]]*=[^=]' -e '\.on[a-z]+[[:space:]]*=[^=]' \
      -e "setAttribute(NS)?\([^,]*['\"](on[a-z]*|src|style|xlink:href|action|formaction|srcdoc)['\"]" \
      -e 'console\.|localStorage|location\.(href|assign|replace)|window\.open|\bimport\(' "$_f" >>"$_bad"
    # the one href the page sets is the hash route dom.js builds from encodeURIComponent'd ids
    grep -nHE "setAttribute(NS)?\([^,]*['\"]href['\"]" "$_f" |
      grep -vF "dom.js:" >>"$_bad"
    grep -nHE "setAttribute(NS)?\([^,]*['\"]href['\"]" "$_f" | grep -F "dom.js:" |
      grep -vF "a.setAttribute('href', route(name, id)); // hash-route" >>"$_bad"
    grep -nHE 'https?://' "$_f" | grep -vF "'http://www.w3.org/2000/svg'" >>"$_bad"
  done
  for _f in "$_d"/*.html; do
    [ -f "$_f" ] || continue
    grep -nHiE -e '[[:space:]]on[a-z]+[[:space:]]*=' -e 'style[[:space:]]*=' -e '<style' -e 'javascript:' -e 'https?://' "$_f" >>"$_bad"
    # a <script> only as <script type="module" src="NAME.js"></script>
    grep -nHi '<script' "$_f" | grep -vE '<script type="module" src="[a-z]+\.js"></script>' >>"$_bad"
  done
  for _f in "$_d"/*.css; do
    [ -f "$_f" ] || continue
    grep -nHiE -e '@import|url\(|expression\(|https?://|javascript:' "$_f" >>"$_bad"
  done
  if [ -s "$_bad" ]; then sed 's/^/#   /' "$_bad"; return 1; fi
  return 0
}

check "ui/: no markup or script made from data, no inline handler or style, no other origin" ui_scan "$UI"
n_href=$(cat "$UI"/*.js | grep -cE "setAttribute\([^,]*['\"]href['\"]")
check "ui/: exactly one place sets an href (dom.js link(), hash routes)" [ "$n_href" -eq 1 ]
bytes=$(cat "$UI"/* | wc -c)
check "ui/: the page is $bytes bytes, under 64 KiB" [ "$bytes" -lt 65536 ]

# the scan fails on each planted sample (so a pass above means something)
mkdir -p "$TEST_TMP/plant"
planted=0; caught=0
while IFS='|' read -r file sample; do
  [ -n "$file" ] || continue
  rm -f "$TEST_TMP/plant/"*
  printf '%s\n' "$sample" >"$TEST_TMP/plant/$file"
  planted=$((planted + 1))
  if ui_scan "$TEST_TMP/plant" >/dev/null; then echo "#   not caught: $file: $sample"; else caught=$((caught + 1)); fi
done <<'EOF'
x.js|node.innerHTML = f.user_agent;
x.js|node.outerHTML = s;
x.js|node.insertAdjacentHTML('beforeend', s);
x.js|document.write(s);
x.js|eval(s);
x.js|const g = new Function(s);
x.js|setTimeout("refresh()", 10);
x.js|setInterval('tick()', 1000);
x.js|a.href = 'javascript:' + s;
x.js|a.href = f.url;
x.js|img.src = f.ip;
x.js|node.onclick = go;
x.js|a.setAttribute('onclick', s);
x.js|a.setAttribute('href', f.url);
x.js|a.setAttribute("src", s);
x.js|a.setAttribute('style', s);
x.js|console.log(token);
x.js|localStorage.setItem('t', token);
x.js|location.href = s;
x.js|fetch('https://example.com/x');
x.js|node.style.cssText = s;
index.html|<script>alert(1)</script>
index.html|<button onclick="go()">x</button>
index.html|<p style="color:red">x</p>
index.html|<style>p{}</style>
index.html|<script src="https://cdn.example/x.js"></script>
app.css|@import url(https://fonts.example/x.css);
app.css|body { background: url(x.png); }
EOF
check "the scan catches each of the $planted planted samples ($caught)" [ "$caught" -eq "$planted" ]

# ---- 2. what the browser run needs -----------------------------------------------------------------------
if [ ! -x "$BIN" ]; then nok "binary $BIN exists"; exit 1; fi
if ! command -v redis-server >/dev/null 2>&1; then nok "redis-server is installed"; exit 1; fi
why=
if [ ! -x "$CHROMIUM" ]; then
  why="chromium is not installed ($CHROMIUM; scripts/deps.sh test installs Debian's chromium)"
elif ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  why="node/npm not installed (scripts/deps.sh test installs nodejs npm)"
else
  want=$(sed -n 's/.*"playwright-core": "\([0-9.]*\)".*/\1/p' "$BROWSER_DIR/package.json")
  have=$(sed -n 's/^  "version": "\([0-9.]*\)".*/\1/p' "$BROWSER_DIR/node_modules/playwright-core/package.json" 2>/dev/null)
  if [ "$have" != "$want" ]; then
    echo "# npm ci --prefix tests/browser (playwright-core $want; have '${have:-none}')"
    if ! timeout 15 npm ping --fetch-timeout=5000 --fetch-retries=0 >"$TEST_TMP/npm.log" 2>&1; then
      why="the npm registry does not answer (npm ping failed in 15 s): playwright-core cannot be installed"
    elif ! timeout 120 npm ci --prefix "$BROWSER_DIR" --no-audit --no-fund --loglevel=error >"$TEST_TMP/npm.log" 2>&1; then
      why="npm ci --prefix tests/browser failed: $(tail -n 1 "$TEST_TMP/npm.log")"
    fi
  fi
fi
if [ -n "$why" ]; then
  skip "the findings page in headless Chromium" "$why"
  [ "$fails" -eq 0 ]; exit
fi

# ---- 3. redis-server and two instances sharing it ----------------------------------------------------------
READ_TOKEN=browser-read-token-0123456789
INGEST_TOKEN=browser-ingest-token-0123456789
RPORT=$(free_port)
if ! redis_start "$RPORT"; then nok "redis-server starts on 127.0.0.1:$RPORT"; exit 1; fi

# instance NAME VAR=value...: `credwatch serve` on a free loopback port sharing the redis; sets PORT
instance() {
  _name=$1; shift
  env CREDWATCH_LISTEN=127.0.0.1:0 CREDWATCH_THREADS=2 CREDWATCH_REDIS_URL="redis://127.0.0.1:$RPORT/0" \
    CREDWATCH_AWS_IP_RANGES="$here/data/aws-ip-ranges-2026-08-22.json" "$@" \
    "$BIN" serve 2>"$TEST_TMP/$_name.log" &
  _pid=$!
  record_pid "$_pid"
  PORT=
  _i=0
  while [ "$_i" -lt 150 ]; do
    PORT=$(sed -n 's/.*"msg":"listening".*"port":\([0-9][0-9]*\).*/\1/p' "$TEST_TMP/$_name.log")
    [ -n "$PORT" ] && return 0
    kill -0 "$_pid" 2>/dev/null || break
    sleep 0.1
    _i=$((_i + 1))
  done
  sed 's/^/#   /' "$TEST_TMP/$_name.log"
  return 1
}
if ! instance b CREDWATCH_INGEST_TOKENS=$INGEST_TOKEN; then nok "instance B starts"; exit 1; fi
PORT_B=$PORT
# A's one sink posts to B's /v1/refused (404: refused for good), so every event becomes a dead letter
# Two dashboard origins for the CORS case: an empty page each, one listed in A's CORS setting.
mkdir -p "$TEST_TMP/dash"
printf '<!doctype html><title>dashboard</title>\n' >"$TEST_TMP/dash/index.html"
dash_start() {
  _p=$(free_port)
  "$PY" -m http.server --bind 127.0.0.1 --directory "$TEST_TMP/dash" "$_p" >"$TEST_TMP/dash-$_p.log" 2>&1 &
  record_pid $!
  _i=0
  until curl -s -o /dev/null "http://127.0.0.1:$_p/" || [ $_i -ge 50 ]; do sleep 0.1; _i=$((_i + 1)); done
  DASH_PORT=$_p
}
dash_start; PORT_DASH=$DASH_PORT
dash_start; PORT_EVIL=$DASH_PORT
if ! instance a CREDWATCH_READ_TOKENS=$READ_TOKEN CREDWATCH_INGEST_TOKENS=$INGEST_TOKEN CREDWATCH_SINKS=hook \
     CREDWATCH_CORS_ORIGINS=http://127.0.0.1:$PORT_DASH \
     CREDWATCH_SINK_HOOK_TYPE=webhook CREDWATCH_SINK_HOOK_URL="http://127.0.0.1:$PORT_B/v1/refused" \
     CREDWATCH_SINK_HOOK_SECRET=browser-sink-secret-0123 CREDWATCH_SINK_HOOK_TIMEOUT_MS=2000; then
  nok "instance A starts"; exit 1
fi
PORT_A=$PORT
ok "redis-server and two instances on loopback (A :$PORT_A with a read token, B :$PORT_B without)"

# ---- 4. the browser run ----------------------------------------------------------------------------------
mkdir -p "$SHOTS"
docs=
[ "${UPDATE_DOCS_SCREENSHOT:-0}" = 1 ] && docs=$root/docs/ui-finding.png
start=$(date +%s)
CW_DASH=http://127.0.0.1:$PORT_DASH CW_EVIL=http://127.0.0.1:$PORT_EVIL \
CW_A=http://127.0.0.1:$PORT_A CW_B=http://127.0.0.1:$PORT_B CW_READ_TOKEN=$READ_TOKEN CW_INGEST_TOKEN=$INGEST_TOKEN \
CW_TMP=$TEST_TMP CW_ROOT=$root CW_SHOTS=$SHOTS CW_CHROMIUM=$CHROMIUM CW_PIDFILE=$PIDFILE CW_DOCS_PNG=$docs \
  run_driver "$DRIVER_LIMIT" node "$BROWSER_DIR/ui_test.mjs" >"$TEST_TMP/driver.out" 2>&1
rc=$?
cat "$TEST_TMP/driver.out"
echo "# browser run: $(( $(date +%s) - start )) s"
if [ "$rc" -ne 0 ] && ! grep -q '^not ok' "$TEST_TMP/driver.out"; then nok "the browser run ended (status $rc)"; fi
grep -q '^not ok' "$TEST_TMP/driver.out" && fails=$((fails + 1))
[ "$fails" -eq 0 ]
