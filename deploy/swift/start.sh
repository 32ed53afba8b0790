#!/bin/bash
# A single-node OpenStack Swift (Debian 12 packages, Swift 2.30) with its S3 API (s3api + tempauth)
# on 127.0.0.1 only: the real object store of dr-registry's tests, and a way to try the registry on
# object storage locally.
#   S3 endpoint http://127.0.0.1:$S3_PORT, access key "test:tester", secret "testing", region us-east-1,
#   path-style, no TLS.
#
# Usage: deploy/swift/start.sh                installs the packages when missing, configures, starts
#        SKIP_INSTALL=1 deploy/swift/start.sh never runs apt-get (automatic when the binaries exist)
#        SWIFT_TMPFS=1 deploy/swift/start.sh  object data on a tmpfs (no xattr size limit; needs root)
# Stop:  deploy/swift/stop.sh (same SWIFT_BASE)
# Idempotent: when Swift already answers on $S3_PORT, it does nothing and exits 0.
# Several instances can run side by side with other SWIFT_BASE and ports (the fault tests do).
set -euo pipefail

BASE=${SWIFT_BASE:-/tmp/dr-registry-swift}   # everything but /etc/swift/swift.conf lives here
S3_PORT=${S3_PORT:-8080}
OBJ_PORT=${OBJ_PORT:-6200}
CONT_PORT=${CONT_PORT:-6201}
ACCT_PORT=${ACCT_PORT:-6202}
MC_PORT=${MC_PORT:-11211}
RUN_USER=${RUN_USER:-$(id -un)}              # the servers drop privileges to this user
SUDO=""; [ "$(id -u)" != 0 ] && SUDO="sudo"
t0=$(date +%s)

answers() { curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null; }

if command -v curl >/dev/null && answers "http://127.0.0.1:$S3_PORT/healthcheck"; then
  echo "swift already answers on 127.0.0.1:$S3_PORT"
  exit 0
fi

# ------------------------------------------------------------------ 1. packages
installed() {
  local bin
  for bin in swift-proxy-server swift-account-server swift-container-server swift-object-server \
             swift-ring-builder memcached curl; do
    command -v "$bin" >/dev/null || return 1
  done
}
if [ -z "${SKIP_INSTALL:-}" ] && ! installed; then
  # Keep the packages' own services from starting: they would take :8080 with /etc/swift/*.conf.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  $SUDO apt-get update -q >/dev/null
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      swift swift-proxy swift-account swift-container swift-object memcached curl >/dev/null
fi
t_install=$(date +%s)

# ------------------------------------------------------------------ 2. data directory
mkdir -p "$BASE"/{etc,node/d1,run,log,cache}
if [ -n "${SWIFT_TMPFS:-}" ] && ! mountpoint -q "$BASE/node"; then
  $SUDO mount -t tmpfs -o "size=${SWIFT_TMPFS_SIZE:-4g},mode=755" swift-data "$BASE/node"
  mkdir -p "$BASE/node/d1"
fi
if [ "$RUN_USER" != "$(id -un)" ]; then $SUDO chown -R "$RUN_USER" "$BASE/node" "$BASE/cache"; fi

# Swift keeps object metadata in user.* xattrs, pickled in 254-byte chunks; ext4 holds only ~3.5 KB
# of them per file, and an object whose metadata does not fit fails with a misleading 503 SlowDown.
# (Swift's own python3, a dependency of the packages, not whatever python3 comes first in PATH.)
xattr_chunks=$(/usr/bin/python3 - "$BASE/node/d1" <<'EOF'
import os, sys, tempfile
fd, path = tempfile.mkstemp(dir=sys.argv[1]); n = 0
try:
    for i in range(40):
        os.setxattr(path, 'user.swift.metadata%d' % i, b'x' * 254); n += 1
except OSError:
    pass
finally:
    os.close(fd); os.unlink(path)
print(n)
EOF
)
if [ "$xattr_chunks" -eq 0 ]; then
  echo "ERROR: $BASE/node does not support user xattrs; Swift cannot store objects there" >&2
  exit 1
elif [ "$xattr_chunks" -lt 40 ]; then
  echo "note: $BASE/node holds ~$((xattr_chunks * 254)) B of xattrs per file: keep object metadata" \
       "under ~2 KB, or use SWIFT_TMPFS=1 or an XFS data dir" >&2
fi

# ------------------------------------------------------------------ 3. configuration
# swift.conf is always read from /etc/swift (hard-coded in Swift), and every instance shares it:
# never change the hash values, or existing data dirs become unreadable.
SWIFT_CONF='[swift-hash]
swift_hash_path_prefix = ci-swift-prefix
swift_hash_path_suffix = ci-swift-suffix

[storage-policy:0]
name = Policy-0
default = yes

[swift-constraints]
# defaults: max_file_size 5 GiB, max_meta_overall_size 4096, max_meta_count 90,
# max_object_name_length 1024, container_listing_limit 10000'
if [ "$(cat /etc/swift/swift.conf 2>/dev/null)" != "$SWIFT_CONF" ]; then
  $SUDO mkdir -p /etc/swift
  printf '%s\n' "$SWIFT_CONF" | $SUDO tee /etc/swift/swift.conf >/dev/null
fi

# The three storage servers: same shape, their own port.
for server in account:$ACCT_PORT container:$CONT_PORT object:$OBJ_PORT; do
  name=${server%%:*} port=${server##*:}
  cat > "$BASE/etc/$name-server.conf" <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $port
workers = 2
user = $RUN_USER
swift_dir = $BASE/etc
devices = $BASE/node
mount_check = false
recon_cache_path = $BASE/cache

[pipeline:main]
pipeline = healthcheck $name-server

[app:$name-server]
use = egg:swift#$name

[filter:healthcheck]
use = egg:swift#healthcheck
EOF
done

# The proxy, with only the middleware the S3 API needs: s3api translates S3 to Swift, tempauth
# checks the S3 signatures (its tokens live in memcached), slo stores multipart uploads, copy and
# versioned_writes (which needs symlink) back S3 copy and versioning (Distribution's S3 driver
# copies); Swift inserts dlo when it is missing.
cat > "$BASE/etc/proxy-server.conf" <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $S3_PORT
workers = 2
user = $RUN_USER
swift_dir = $BASE/etc

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api tempauth copy slo dlo versioned_writes symlink proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
# One storage node: never "error-limit" it, or one failure (a 507, a timeout) turns into 60 s of
# 503 "Please reduce your request rate" for every request.
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

[filter:versioned_writes]
use = egg:swift#versioned_writes
allow_versioned_writes = true
allow_object_versioning = true
EOF
for filter in catch_errors gatekeeper healthcheck proxy-logging listing_formats copy slo dlo symlink; do
  printf '\n[filter:%s]\nuse = egg:swift#%s\n' "$filter" "${filter//-/_}" >> "$BASE/etc/proxy-server.conf"
done

# Rings: 2^8 partitions, 1 replica, one device on this node.
for ring in object:$OBJ_PORT container:$CONT_PORT account:$ACCT_PORT; do
  name=${ring%%:*} port=${ring##*:}
  builder="$BASE/etc/$name.builder"
  rm -f "$builder" "$BASE/etc/$name.ring.gz"
  swift-ring-builder "$builder" create 8 1 1 >/dev/null
  swift-ring-builder "$builder" add --region 1 --zone 1 --ip 127.0.0.1 --port "$port" --device d1 --weight 100 >/dev/null
  swift-ring-builder "$builder" rebalance >/dev/null
done

# ------------------------------------------------------------------ 4. start
# Servers of an earlier start of this instance that never came up would hold the ports: stop them.
bash "$(dirname "$0")/stop.sh"
# Each server in a session of its own; the pid file holds the exact PID (also its group id), which
# stop.sh signals. (`setsid cmd & echo $!` would record setsid's PID when setsid forks.)
start_bg() {
  local name=$1; shift
  setsid bash -c 'echo $$ > "$0"; exec "$@"' "$BASE/run/$name.pid" "$@" \
      >"$BASE/log/$name.log" 2>&1 </dev/null &
}
MC_USER=(); [ "$(id -u)" = 0 ] && MC_USER=(-u memcache)   # memcached refuses to run as root
start_bg memcached memcached "${MC_USER[@]}" -l 127.0.0.1 -p "$MC_PORT" -U 0 -m 64
for server in account container object proxy; do
  # -v also logs to stderr (the log file); the syslog copy goes nowhere without /dev/log.
  start_bg "$server" "swift-$server-server" "$BASE/etc/$server-server.conf" -v
done

# Up means: every server answers and tempauth (through memcached) accepts the test user.
for _ in $(seq 1 150); do
  if answers "http://127.0.0.1:$S3_PORT/healthcheck" && answers "http://127.0.0.1:$OBJ_PORT/healthcheck" \
     && answers "http://127.0.0.1:$CONT_PORT/healthcheck" && answers "http://127.0.0.1:$ACCT_PORT/healthcheck" \
     && curl -fsS -o /dev/null --max-time 2 -H 'X-Auth-User: test:tester' -H 'X-Auth-Key: testing' \
             "http://127.0.0.1:$S3_PORT/auth/v1.0" 2>/dev/null; then
    echo "swift up on 127.0.0.1:$S3_PORT in $(( $(date +%s) - t0 )) s (packages $(( t_install - t0 )) s), data in $BASE"
    exit 0
  fi
  sleep 0.2
done
echo "swift did not come up on 127.0.0.1:$S3_PORT; last log lines:" >&2
tail -n 20 "$BASE"/log/*.log >&2
bash "$(dirname "$0")/stop.sh"   # leave no half-started instance behind
exit 1
