#!/bin/bash
# Stop what deploy/swift/start.sh started: each server was started with setsid, so its PID is also its
# process-group id; signalling -PID reaches the parent and its worker children, nothing else.
BASE=${SWIFT_BASE:-/tmp/dr-registry-swift}
for name in proxy object container account memcached; do
  f="$BASE/run/$name.pid"; [ -f "$f" ] || continue
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
    for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL -- "-$pid" 2>/dev/null
  fi
  rm -f "$f"
done
if [ -n "${UNMOUNT:-}" ] && mountpoint -q "$BASE/node"; then
  SUDO=""; [ "$(id -u)" != 0 ] && SUDO="sudo"; $SUDO umount "$BASE/node"
fi
