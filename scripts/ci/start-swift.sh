#!/usr/bin/env bash
# A real S3-compatible server for the S3 body store tests: a single-node OpenStack Swift (SAIO
# style) with its S3 API (the s3api middleware) and tempauth, from Debian's packages, on loopback.
#
#   bash scripts/ci/start-swift.sh        # installs if missing, configures, starts, waits
#   bash scripts/ci/start-swift.sh stop   # stops the servers this script started
#
# Idempotent: when a Swift started by this script already answers S3 requests signed with the test
# credentials, it only checks that and exits. Everything lives under $METERHUB_SWIFT_HOME
# (default /var/lib/meterhub-swift): config, rings, the object storage folder (a plain directory:
# mount_check = false, no XFS needed; any filesystem with user xattrs, such as ext4), pid files and
# logs. Ports: the proxy (S3 API) on $METERHUB_SWIFT_PORT (default 18090), the object, container
# and account servers on the three ports after it. One replica, one device, one worker each.
#
# S3 credentials (tempauth user test:tester, key testing):
#   endpoint http://127.0.0.1:18090, region us-east-1, path-style,
#   access key id "test:tester", secret access key "testing".
# The readiness check signs real SigV4 requests (with node's crypto, no packages needed): makes the
# bucket meterhub-ci, puts and gets an object in it, and checks that a request signed with a wrong
# secret is refused (403).
set -euo pipefail

SWIFT_HOME=${METERHUB_SWIFT_HOME:-/var/lib/meterhub-swift}
PORT=${METERHUB_SWIFT_PORT:-18090}
OBJECT_PORT=$((PORT + 1))
CONTAINER_PORT=$((PORT + 2))
ACCOUNT_PORT=$((PORT + 3))
ENDPOINT="http://127.0.0.1:${PORT}"
SERVERS=(object container account proxy)

log() { echo "start-swift: $*" >&2; }

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop_servers() {
  local s pidf pid
  for s in "${SERVERS[@]}"; do
    pidf="$SWIFT_HOME/run/$s.pid"
    if pid_alive "$pidf"; then
      pid=$(cat "$pidf")
      # Each server was started with setsid: its pid is its process group (parent and workers).
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    rm -f "$pidf"
  done
}

# Signs S3 requests (AWS SigV4) against the proxy: prints the HTTP status of each check.
s3_check() {
  node --input-type=module - "$ENDPOINT" <<'EOF'
import { createHash, createHmac } from 'node:crypto';
const endpoint = process.argv[2];
const region = 'us-east-1';
const sha = (d) => createHash('sha256').update(d).digest('hex');
const hmac = (k, d) => createHmac('sha256', k).update(d).digest();
async function s3(method, path, accessKey, secret, body = '') {
  const url = new URL(path, endpoint);
  const amzDate = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  const day = amzDate.slice(0, 8);
  const payloadHash = sha(body);
  const headers = { host: url.host, 'x-amz-content-sha256': payloadHash, 'x-amz-date': amzDate };
  const signed = Object.keys(headers).sort();
  const canonical = [method, url.pathname, '', ...signed.map((h) => `${h}:${headers[h]}\n`).join('').split('\n').slice(0, -1), '', signed.join(';'), payloadHash].join('\n');
  const scope = `${day}/${region}/s3/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha(canonical)].join('\n');
  let k = hmac(`AWS4${secret}`, day);
  for (const part of [region, 's3', 'aws4_request']) k = hmac(k, part);
  const signature = createHmac('sha256', k).update(toSign).digest('hex');
  const res = await fetch(url, {
    method,
    headers: { ...headers, authorization: `AWS4-HMAC-SHA256 Credential=${accessKey}/${scope}, SignedHeaders=${signed.join(';')}, Signature=${signature}` },
    body: method === 'PUT' && body ? body : undefined,
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  return method === 'GET' && path !== '/' ? `${res.status}${text === 'ready' ? '' : '-wrong-body'}` : res.status;
}
try {
  const bucket = await s3('PUT', '/meterhub-ci', 'test:tester', 'testing');       // create (200), or already ours (409)
  const list = await s3('GET', '/', 'test:tester', 'testing');                    // ListBuckets: 200
  const put = await s3('PUT', '/meterhub-ci/ready', 'test:tester', 'testing', 'ready'); // an object (object server): 200
  const get = await s3('GET', '/meterhub-ci/ready', 'test:tester', 'testing');    // and back: 200
  const wrong = await s3('GET', '/', 'test:tester', 'not-the-secret');            // must be refused: 403
  console.log(`${bucket === 409 ? 200 : bucket} ${list} ${put} ${get} ${wrong}`);
} catch (e) {
  console.log(`error ${e.cause?.code ?? e.message}`);
}
EOF
}

s3_ready() {
  local r
  r=$(s3_check 2>/dev/null || true)
  case "$r" in
    "200 200 200 200 403") return 0 ;;
    *) LAST_CHECK="$r"; return 1 ;;
  esac
}

if [ "${1:-}" = "stop" ]; then
  stop_servers
  log "stopped"
  exit 0
fi

# ---------------------------------------------------------------------------------------------
# Already up (started by an earlier run of this script)?
all_alive() {
  local s
  for s in "${SERVERS[@]}"; do pid_alive "$SWIFT_HOME/run/$s.pid" || return 1; done
}
if all_alive && s3_ready; then
  log "Swift S3 API already up at $ENDPOINT"
  exit 0
fi

started_at=$(date +%s)

# ---------------------------------------------------------------------------------------------
# Install (Debian bookworm: swift 2.30, s3api included in swift.common.middleware.s3api).
if ! command -v swift-proxy-server >/dev/null || ! command -v swift-object-server >/dev/null \
   || ! command -v swift-container-server >/dev/null || ! command -v swift-account-server >/dev/null \
   || ! command -v swift-ring-builder >/dev/null; then
  log "installing Swift from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  # The packages' postinst scripts try to enable systemd units; with no init system running here
  # that is a harmless no-op, and nothing is started on the packages' default ports.
  apt-get install -y -qq --no-install-recommends swift swift-proxy swift-object swift-container swift-account >&2
fi
/usr/bin/python3 -c 'import swift.common.middleware.s3api.s3api, lxml' \
  || { log "this Swift has no s3api middleware"; exit 1; }

# ---------------------------------------------------------------------------------------------
# Configure (written again at every start, so a change to this script takes effect).
stop_servers
mkdir -p "$SWIFT_HOME"/{etc,run,log,cache,srv/d1}
ETC="$SWIFT_HOME/etc"

# Every Swift server reads /etc/swift/swift.conf (the hash path salt, storage policies); the
# package ships one. Write one only where it is missing or has no salt.
if ! grep -qs '^swift_hash_path_suffix' /etc/swift/swift.conf; then
  mkdir -p /etc/swift
  cat > /etc/swift/swift.conf <<EOF
[swift-hash]
swift_hash_path_suffix = meterhub-ci
swift_hash_path_prefix = meterhub-ci
[storage-policy:0]
name = Policy-0
default = yes
EOF
fi

common() {
  cat <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $1
workers = 1
user = $(id -un)
swift_dir = $ETC
devices = $SWIFT_HOME/srv
mount_check = false
log_name = meterhub-swift-$2
log_level = INFO
recon_cache_path = $SWIFT_HOME/cache
EOF
}

{ common "$OBJECT_PORT" object; cat <<EOF
[pipeline:main]
pipeline = healthcheck object-server
[app:object-server]
use = egg:swift#object
[filter:healthcheck]
use = egg:swift#healthcheck
EOF
} > "$ETC/object-server.conf"

{ common "$CONTAINER_PORT" container; cat <<EOF
[pipeline:main]
pipeline = healthcheck container-server
[app:container-server]
use = egg:swift#container
allow_versions = true
[filter:healthcheck]
use = egg:swift#healthcheck
EOF
} > "$ETC/container-server.conf"

{ common "$ACCOUNT_PORT" account; cat <<EOF
[pipeline:main]
pipeline = healthcheck account-server
[app:account-server]
use = egg:swift#account
[filter:healthcheck]
use = egg:swift#healthcheck
EOF
} > "$ETC/account-server.conf"

# s3api before tempauth (it turns the S3 signature into auth details that tempauth checks against
# the user's key); slo after it (S3 multipart uploads are stored as static large objects).
# cache: tempauth insists on a memcache client; none needs to run for S3 requests (each is
# checked by its signature, not by a token).
{ common "$PORT" proxy; cat <<EOF
[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api tempauth copy slo dlo proxy-logging proxy-server
[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
allow_account_management = true
[filter:s3api]
use = egg:swift#s3api
location = us-east-1
s3_acl = false
check_bucket_owner = false
[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin
[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:11211
[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
EOF
} > "$ETC/proxy-server.conf"

# Rings: one device, one replica. Built again when the ports changed.
stamp="ports $OBJECT_PORT $CONTAINER_PORT $ACCOUNT_PORT"
if [ "$(cat "$ETC/rings.stamp" 2>/dev/null)" != "$stamp" ] \
   || [ ! -f "$ETC/object.ring.gz" ] || [ ! -f "$ETC/container.ring.gz" ] || [ ! -f "$ETC/account.ring.gz" ]; then
  log "building rings"
  rm -f "$ETC"/*.builder "$ETC"/*.ring.gz
  rm -rf "$ETC/backups"
  for ring in object:$OBJECT_PORT container:$CONTAINER_PORT account:$ACCOUNT_PORT; do
    name=${ring%%:*}; port=${ring##*:}
    swift-ring-builder "$ETC/$name.builder" create 8 1 1 >/dev/null
    swift-ring-builder "$ETC/$name.builder" add "r1z1-127.0.0.1:$port/d1" 1 >/dev/null
    swift-ring-builder "$ETC/$name.builder" rebalance >/dev/null || true  # exit code 1 is a warning
    [ -f "$ETC/$name.ring.gz" ] || { log "ring $name not built"; exit 1; }
  done
  echo "$stamp" > "$ETC/rings.stamp"
fi

# ---------------------------------------------------------------------------------------------
# Start each server in its own session (so that `stop` ends it and its workers, nothing else).
for s in "${SERVERS[@]}"; do
  setsid "/usr/bin/swift-$s-server" "$ETC/$s-server.conf" --verbose \
    </dev/null >>"$SWIFT_HOME/log/$s.log" 2>&1 &
  echo $! > "$SWIFT_HOME/run/$s.pid"
done

LAST_CHECK=""
for i in $(seq 1 120); do
  for s in "${SERVERS[@]}"; do
    if ! pid_alive "$SWIFT_HOME/run/$s.pid"; then
      log "swift-$s-server exited; its log:"
      tail -n 30 "$SWIFT_HOME/log/$s.log" >&2 || true
      exit 1
    fi
  done
  if s3_ready; then
    log "Swift S3 API up at $ENDPOINT after $(( $(date +%s) - started_at )) s (access key test:tester, secret testing)"
    exit 0
  fi
  sleep 0.5
done
log "Swift did not answer S3 requests within 60 s (last check: ${LAST_CHECK:-nothing}); proxy log:"
tail -n 40 "$SWIFT_HOME/log/proxy.log" >&2 || true
exit 1
