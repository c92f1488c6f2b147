#!/usr/bin/env bash
# Builds and runs FerretDB 1.24.2 (SQLite handler) on 127.0.0.1 so that the
# MongoDB store tests have a MongoDB-wire-compatible server.
#
# Usage:
#   .ci/ferretdb.sh build            build the binary into the cache if missing
#   .ci/ferretdb.sh start RUN_DIR    start a server with its data in RUN_DIR, wait
#                                    until it accepts connections, and print
#                                    `export MONGODB_URI=...` on stdout
#   .ci/ferretdb.sh stop RUN_DIR     stop the server started in RUN_DIR
#
# Sourcing the file defines ferretdb_build, ferretdb_start and ferretdb_stop
# instead. `start` also writes RUN_DIR/ferretdb.pid, RUN_DIR/ferretdb.env (the
# export line) and RUN_DIR/ferretdb.log, so a caller can do either of:
#   eval "$(.ci/ferretdb.sh start "$dir")"
#   .ci/ferretdb.sh start "$dir" >/dev/null && . "$dir/ferretdb.env"
#
# Environment:
#   FEEDHUB_CI_CACHE        cache directory, default $HOME/.cache/feedhub-ci;
#                           the binary goes to $FEEDHUB_CI_CACHE/bin/ferretdb
#   FERRETDB_START_TIMEOUT  seconds to wait for the server to listen, default 30
#
# Network: building downloads the module from the Go module proxy (GOPROXY)
# unless it is in the module cache already. The server listens on loopback
# only, with telemetry disabled, no debug HTTP listener and no tracing.

FERRETDB_VERSION=v1.24.2
FERRETDB_MODULE=github.com/FerretDB/FerretDB
FERRETDB_CACHE="${FEEDHUB_CI_CACHE:-$HOME/.cache/feedhub-ci}"
FERRETDB_BIN="$FERRETDB_CACHE/bin/ferretdb"

ferretdb_log() {
  echo "ferretdb.sh: $*" >&2
}

# Builds the binary from the module source. A plain `go install
# github.com/FerretDB/FerretDB/cmd/ferretdb@v1.24.2` produces a binary that
# panics at start, because the module zip lacks the generated
# build/version/version.txt. So this copies the module source, writes that
# file, as the panic message of FerretDB 1.24.2 instructs, and builds there.
ferretdb_build() {
  if [[ -x "$FERRETDB_BIN" ]] && "$FERRETDB_BIN" --version 2>/dev/null | grep -qx "version: $FERRETDB_VERSION"; then
    return 0
  fi
  command -v go >/dev/null || {
    ferretdb_log "go is not installed; install Go 1.24 or later to build FerretDB $FERRETDB_VERSION"
    return 1
  }

  local module_dir src
  mkdir -p "$FERRETDB_CACHE"
  module_dir="$(cd "$FERRETDB_CACHE" && go mod download -json "$FERRETDB_MODULE@$FERRETDB_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')" || true
  if [[ -z "$module_dir" || ! -d "$module_dir" ]]; then
    ferretdb_log "downloading $FERRETDB_MODULE@$FERRETDB_VERSION failed; check GOPROXY and the network"
    return 1
  fi

  src="$FERRETDB_CACHE/src/ferretdb-$FERRETDB_VERSION"
  rm -rf "$src"
  mkdir -p "$src" "$(dirname "$FERRETDB_BIN")" &&
    cp -R "$module_dir/." "$src/" &&
    chmod -R u+w "$src" &&
    echo "$FERRETDB_VERSION" >"$src/build/version/version.txt" || return 1

  ferretdb_log "building FerretDB $FERRETDB_VERSION into $FERRETDB_BIN (takes a minute or two)"
  if ! (cd "$src" && go build -buildvcs=false -trimpath -o "$FERRETDB_BIN.tmp" ./cmd/ferretdb); then
    ferretdb_log "building FerretDB $FERRETDB_VERSION failed; see the go output above"
    return 1
  fi
  mv "$FERRETDB_BIN.tmp" "$FERRETDB_BIN"
  rm -rf "$src"
}

# Prints a TCP port that was free on 127.0.0.1 a moment ago.
ferretdb_free_port() {
  node -e '
    const server = require("node:net").createServer();
    server.listen(0, "127.0.0.1", () => {
      console.log(server.address().port);
      server.close();
    });'
}

ferretdb_port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

ferretdb_start() {
  local run_dir="${1:?usage: ferretdb_start RUN_DIR}"
  local timeout="${FERRETDB_START_TIMEOUT:-30}"
  if ! [[ "$timeout" =~ ^[1-9][0-9]*$ ]]; then
    ferretdb_log "FERRETDB_START_TIMEOUT=$timeout is invalid; set a whole number of seconds"
    return 1
  fi

  ferretdb_build
  mkdir -p "$run_dir/data"
  run_dir="$(cd "$run_dir" && pwd)"
  if [[ -f "$run_dir/ferretdb.pid" ]] && kill -0 "$(cat "$run_dir/ferretdb.pid")" 2>/dev/null; then
    ferretdb_log "a server started in $run_dir is still running; run: .ci/ferretdb.sh stop $run_dir"
    return 1
  fi

  # The port can be taken between picking and binding, so try a few times.
  local attempt port pid waited
  for attempt in 1 2 3; do
    port="$(ferretdb_free_port)"
    DO_NOT_TRACK=1 "$FERRETDB_BIN" \
      --handler=sqlite \
      --sqlite-url="file:$run_dir/data/" \
      --listen-addr="127.0.0.1:$port" \
      --state-dir="$run_dir" \
      --debug-addr=- \
      --telemetry=disable \
      --test-telemetry-url=http://127.0.0.1:9/ \
      --log-level=WARN \
      >"$run_dir/ferretdb.log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$run_dir/ferretdb.pid"

    waited=0
    while kill -0 "$pid" 2>/dev/null; do
      if ferretdb_port_open "$port"; then
        local line="export MONGODB_URI=mongodb://127.0.0.1:$port/"
        echo "$line" >"$run_dir/ferretdb.env"
        ferretdb_log "listening on 127.0.0.1:$port (pid $pid, data in $run_dir/data)"
        echo "$line"
        return 0
      fi
      if ((waited >= timeout * 10)); then
        ferretdb_log "timed out after ${timeout}s waiting for 127.0.0.1:$port; log follows"
        tail -n 40 "$run_dir/ferretdb.log" >&2 || true
        ferretdb_stop "$run_dir"
        return 1
      fi
      sleep 0.1
      waited=$((waited + 1))
    done

    ferretdb_log "server exited before listening on 127.0.0.1:$port (attempt $attempt); log follows"
    tail -n 20 "$run_dir/ferretdb.log" >&2 || true
    rm -f "$run_dir/ferretdb.pid"
  done
  return 1
}

ferretdb_stop() {
  local run_dir="${1:?usage: ferretdb_stop RUN_DIR}"
  local pid_file="$run_dir/ferretdb.pid" pid i
  [[ -f "$pid_file" ]] || return 0
  pid="$(cat "$pid_file")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      ferretdb_log "pid $pid did not stop within 5s of SIGTERM; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$pid_file" "$run_dir/ferretdb.env"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  set -euo pipefail
  case "${1:-}" in
    build) ferretdb_build ;;
    start) ferretdb_start "${2:?usage: $0 start RUN_DIR}" ;;
    stop) ferretdb_stop "${2:?usage: $0 stop RUN_DIR}" ;;
    *)
      echo "usage: $0 build | start RUN_DIR | stop RUN_DIR" >&2
      exit 2
      ;;
  esac
fi
