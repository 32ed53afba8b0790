#!/bin/bash
# A single-node OpenStack Swift (Debian bookworm packages, 2.30) with its S3 API (s3api + tempauth)
# on 127.0.0.1 only, for the tests and for trying dr-registry on object storage locally.
#   S3 endpoint http://127.0.0.1:$S3_PORT, access key "test:tester", secret "testing", region us-east-1
#
# Usage: deploy/swift/start.sh            (installs the packages when missing, configures, starts)
#        SWIFT_TMPFS=1 deploy/swift/start.sh  (object data on a tmpfs: no xattr size limit; root)
# Stop:  deploy/swift/stop.sh
# Idempotent: when Swift already answers on $S3_PORT, it does nothing.
set -euo pipefail

BASE=${SWIFT_BASE:-/tmp/dr-registry-swift}          # everything except /etc/swift/swift.conf lives here
S3_PORT=${S3_PORT:-8080}
OBJ_PORT=${OBJ_PORT:-6200}; CONT_PORT=${CONT_PORT:-6201}; ACCT_PORT=${ACCT_PORT:-6202}
MC_PORT=${MC_PORT:-11211}
RUN_USER=${RUN_USER:-$(id -un)}              # swift servers drop privileges to this user
SUDO=""; [ "$(id -u)" != 0 ] && SUDO="sudo"

t0=$(date +%s.%N)

if curl -fsS "http://127.0.0.1:$S3_PORT/healthcheck" >/dev/null 2>&1; then
  echo "swift already running on 127.0.0.1:$S3_PORT"
  exit 0
fi
if [ -z "${SKIP_INSTALL:-}" ] && command -v swift-proxy-server >/dev/null && command -v memcached >/dev/null; then
  SKIP_INSTALL=1
fi

# ---------------------------------------------------------------- 1. packages
if [ -z "${SKIP_INSTALL:-}" ]; then
  # Do not let the packages' own init/systemd units start (they would grab :8080 with /etc/swift/*.conf).
  made_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d; made_policy=1
  fi
  $SUDO apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends \
      swift swift-proxy swift-account swift-container swift-object memcached curl >/dev/null
  [ -n "$made_policy" ] && $SUDO rm -f /usr/sbin/policy-rc.d
fi
t_install=$(date +%s.%N)

# ---------------------------------------------------------------- 2. directories + data filesystem
mkdir -p "$BASE"/{etc,node,run,log,cache}
if [ -n "${SWIFT_TMPFS:-}" ] && ! mountpoint -q "$BASE/node"; then
  $SUDO mount -t tmpfs -o size=${SWIFT_TMPFS_SIZE:-4g},mode=755 swift-data "$BASE/node"
fi
mkdir -p "$BASE/node/d1"
[ "$RUN_USER" != "$(id -un)" ] && $SUDO chown -R "$RUN_USER" "$BASE/node" "$BASE/cache"

# Swift stores object metadata in user.* xattrs (pickled, in 254-byte chunks).  Probe the capacity.
xattr_ok=$(python3 - "$BASE/node/d1" <<'EOF'
import os, sys, tempfile
fd, p = tempfile.mkstemp(dir=sys.argv[1]); n = 0
try:
    for i in range(40):                      # 40 * 254 B ~ 10 KB
        os.setxattr(p, 'user.swift.metadata%d' % i, b'x' * 254); n += 1
except OSError:
    pass
finally:
    os.close(fd); os.unlink(p)
print(n)
EOF
)
if [ "$xattr_ok" -eq 0 ]; then
  echo "ERROR: $BASE/node does not support user xattrs; Swift cannot store objects there" >&2; exit 1
elif [ "$xattr_ok" -lt 40 ]; then
  echo "NOTE: $BASE/node holds only ~$((xattr_ok*254)) B of xattrs per file (ext4?). Objects whose" >&2
  echo "      metadata pickles to more than that get 507 -> S3 503 SlowDown. Keep user metadata small" >&2
  echo "      (<~2 KB, few keys) or use SWIFT_TMPFS=1 / an XFS data dir." >&2
fi

# ---------------------------------------------------------------- 3. config files
# swift.conf is ALWAYS read from /etc/swift/swift.conf (hard-coded in swift.common.utils).
SWIFT_CONF=$(cat <<'EOF'
[swift-hash]
swift_hash_path_prefix = ci-swift-prefix
swift_hash_path_suffix = ci-swift-suffix

[storage-policy:0]
name = Policy-0
default = yes

[swift-constraints]
# defaults: max_file_size 5 GiB, max_meta_overall_size 4096, max_meta_count 90,
# max_object_name_length 1024, container_listing_limit 10000
EOF
)
if ! [ "$(cat /etc/swift/swift.conf 2>/dev/null)" = "$SWIFT_CONF" ]; then   # needs root only when it changes
  $SUDO mkdir -p /etc/swift
  printf '%s\n' "$SWIFT_CONF" | $SUDO tee /etc/swift/swift.conf >/dev/null
fi

for s in account:$ACCT_PORT:1 container:$CONT_PORT:2 object:$OBJ_PORT:2; do
  IFS=: read -r name port workers <<<"$s"
  cat > "$BASE/etc/$name-server.conf" <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $port
workers = $workers
user = $RUN_USER
swift_dir = $BASE/etc
devices = $BASE/node
mount_check = false
recon_cache_path = $BASE/cache
log_level = INFO

[pipeline:main]
pipeline = healthcheck $name-server

[app:$name-server]
use = egg:swift#$name

[filter:healthcheck]
use = egg:swift#healthcheck
EOF
done

cat > "$BASE/etc/proxy-server.conf" <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $S3_PORT
workers = 2
user = $RUN_USER
swift_dir = $BASE/etc
log_level = INFO

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempurl ratelimit s3api tempauth copy container-quotas account-quotas slo dlo versioned_writes symlink proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
# single storage node: never "error-limit" it (default 60 s would turn one 507/timeout
# into a minute of 503 "Please reduce your request rate" for every request)
error_suppression_interval = 0

[filter:s3api]
use = egg:swift#s3api
location = us-east-1

[filter:tempauth]
use = egg:swift#tempauth
user_admin_admin = admin .admin .reseller_admin
user_test_tester = testing .admin

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$MC_PORT

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

[filter:bulk]
use = egg:swift#bulk

[filter:tempurl]
use = egg:swift#tempurl

[filter:ratelimit]
use = egg:swift#ratelimit

[filter:copy]
use = egg:swift#copy

[filter:container-quotas]
use = egg:swift#container_quotas

[filter:account-quotas]
use = egg:swift#account_quotas

[filter:slo]
use = egg:swift#slo

[filter:dlo]
use = egg:swift#dlo

[filter:versioned_writes]
use = egg:swift#versioned_writes
allow_versioned_writes = true
allow_object_versioning = true

[filter:symlink]
use = egg:swift#symlink
EOF

# ---------------------------------------------------------------- 4. rings (1 replica, 2^8 partitions)
(
  cd "$BASE/etc"
  for r in object:$OBJ_PORT container:$CONT_PORT account:$ACCT_PORT; do
    n=${r%%:*}; p=${r##*:}
    rm -f "$n.builder" "$n.ring.gz"
    swift-ring-builder "$n.builder" create 8 1 1 >/dev/null
    swift-ring-builder "$n.builder" add --region 1 --zone 1 --ip 127.0.0.1 --port "$p" --device d1 --weight 100 >/dev/null
    swift-ring-builder "$n.builder" rebalance >/dev/null
  done
)
t_config=$(date +%s.%N)

# ---------------------------------------------------------------- 5. start (own session each; pidfile = session/group id)
start_bg() {  # start_bg NAME CMD...   -> $BASE/run/NAME.pid holds the exact PID (also its PGID/SID)
  local name=$1; shift
  setsid bash -c 'echo $$ > "$0"; exec "$@"' "$BASE/run/$name.pid" "$@" \
      >"$BASE/log/$name.log" 2>&1 </dev/null &
}
MC_USER=(); [ "$(id -u)" = 0 ] && MC_USER=(-u memcache)
start_bg memcached memcached "${MC_USER[@]}" -l 127.0.0.1 -p "$MC_PORT" -U 0 -m 64
for s in account container object proxy; do
  # -v: also log to stderr (-> $BASE/log/$s.log); without a /dev/log syslog the other copy goes to UDP localhost:514
  start_bg "$s" "swift-$s-server" "$BASE/etc/$s-server.conf" -v
done

for i in $(seq 1 150); do
  if curl -fsS "http://127.0.0.1:$S3_PORT/healthcheck" >/dev/null 2>&1 \
     && curl -fsS "http://127.0.0.1:$OBJ_PORT/healthcheck" >/dev/null 2>&1 \
     && curl -fsS "http://127.0.0.1:$CONT_PORT/healthcheck" >/dev/null 2>&1 \
     && curl -fsS "http://127.0.0.1:$ACCT_PORT/healthcheck" >/dev/null 2>&1 \
     && curl -fsS -o /dev/null "http://127.0.0.1:$S3_PORT/auth/v1.0" -H 'X-Auth-User: test:tester' -H 'X-Auth-Key: testing'; then
    t_up=$(date +%s.%N)
    awk -v a="$t0" -v b="$t_install" -v c="$t_config" -v d="$t_up" 'BEGIN {
      printf "swift up: install %.1fs, config+rings %.1fs, start %.1fs, total %.1fs\n", b-a, c-b, d-c, d-a }'
    exit 0
  fi
  sleep 0.2
done
echo "swift did not come up" >&2; tail -n 30 "$BASE"/log/*.log >&2; exit 1
