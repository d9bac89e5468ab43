#!/usr/bin/env bash
# `demo.sh start|stop`, run by `make demo` / `make demo-stop`: the echo upstream and Envoy with
# zt-suite (JWT, authorization, rate limit, audit in one filter) in front of it, in the background
# on 127.0.0.1, with pid files and logs in build/demo/. Envoy runs the ready-to-run configuration
# as shipped (envoy/standalone/zt-suite.yaml and its policy file, from the repository's root), with
# one listener added for mutual TLS (the same routes and policy, the demo's certificates).
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=build/demo
BIN="${TARGET_DIR:-target}/debug"
ENVOY="${ENVOY:-.venv/bin/envoy}"
READY_SECONDS=20

# Stops the process in a pid file, if it is still the one we started (a pid can be reused).
stop_one() {
  local name=$1 pidfile="$OUT/$1.pid"
  [[ -f $pidfile ]] || return 0
  local pid; pid=$(<"$pidfile")
  if kill -0 "$pid" 2>/dev/null && grep -qa -- "$2" "/proc/$pid/cmdline" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    echo "stopped $name (pid $pid)"
  fi
  rm -f "$pidfile"
}

stop() {
  stop_one envoy envoy
  stop_one echo zt-echo
  # The demo's signing keys live only as long as the demo.
  rm -rf "$OUT/keys"
}

running() {
  local pidfile="$OUT/$1.pid"
  [[ -f $pidfile ]] && kill -0 "$(<"$pidfile")" 2>/dev/null
}

start() {
  if running envoy || running echo; then
    echo "the demo is already running: make demo-stop first" >&2
    exit 1
  fi
  mkdir -p "$OUT"
  # Checks that the fixed ports are free, makes the secret and certificates, mints the tokens.
  "$BIN/zt-demo" "$OUT"
  # shellcheck source=/dev/null
  source "$OUT/ports.env"
  # The issuer's secret, for Envoy's environment only (the policy names the variable).
  # shellcheck source=/dev/null
  source "$OUT/keys/env"

  nohup "$BIN/zt-echo" "$UPSTREAM_PORT" >"$OUT/echo.log" 2>&1 &
  echo $! >"$OUT/echo.pid"
  nohup "$ENVOY" -c envoy/standalone/zt-suite.yaml --config-yaml "$(<"$OUT/mtls-listener.yaml")" \
    --disable-hot-restart --concurrency 2 -l info --component-log-level main:warning >"$OUT/envoy.log" 2>&1 &
  echo $! >"$OUT/envoy.pid"

  local waited=0
  until curl -fsS "http://127.0.0.1:$ADMIN_PORT/ready" >/dev/null 2>&1; do
    if ! running envoy || (( waited >= READY_SECONDS * 10 )); then
      echo "Envoy did not become ready; the end of $OUT/envoy.log:" >&2
      tail -n 20 "$OUT/envoy.log" >&2
      stop
      exit 1
    fi
    sleep 0.1
    waited=$((waited + 1))
  done

  echo "Envoy (envoy/standalone/zt-suite.yaml: zt-suite with JWT, authorization, rate limit, audit) on 127.0.0.1:$LISTENER_PORT, mTLS on 127.0.0.1:$MTLS_PORT, admin 127.0.0.1:$ADMIN_PORT, echo upstream 127.0.0.1:$UPSTREAM_PORT"
  echo "the policy: envoy/standalone/policies/zt-suite.yaml (a new version moved into place is applied at once)"
  echo "logs and pid files in $OUT/; stop with: make demo-stop"
  echo "audit records (one per request) in $OUT/envoy.log: cargo run -q -p ztctl -- verify|inventory $OUT/envoy.log"
  echo
  cat "$OUT/curl.txt"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
