#!/bin/bash
# Stops what deploy/swift/start.sh started for SWIFT_BASE (default /tmp/dr-registry-swift), and
# only that. Each server was started with setsid, so its PID is also its process-group id:
# signalling -PID reaches the server and its workers, nothing else. Data and config stay, so the
# next start.sh is quick. UNMOUNT=1 also unmounts a SWIFT_TMPFS data dir (its data is lost).
BASE=${SWIFT_BASE:-/tmp/dr-registry-swift}
for name in proxy object container account memcached; do
  f="$BASE/run/$name.pid"
  [ -f "$f" ] || continue
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL -- "-$pid" 2>/dev/null; fi
  fi
  rm -f "$f"
done
if [ -n "${UNMOUNT:-}" ] && mountpoint -q "$BASE/node"; then
  SUDO=""; [ "$(id -u)" != 0 ] && SUDO="sudo"
  $SUDO umount "$BASE/node"
fi
exit 0
