#!/usr/bin/env bash
# Installs what the test suite needs on a Debian 12 machine (as root): the real clients (docker
# daemon + CLI, skopeo), the reference registry (CNCF Distribution) and OpenStack Swift with its
# S3 API. Package maintainer scripts must not start services: tests start their own.
# openssl makes the test CAs of the TLS tests; docker-compose (`config`) and systemd
# (systemd-analyze, systemd-sysusers, systemd-tmpfiles) check the deployment files; promtool
# (package prometheus) checks deploy/prometheus/ rules; tmux gives the CLI a terminal to prompt on;
# chromium (and a font for its screenshots) runs the console's browser tests through playwright-core.
set -euo pipefail
packages=(docker.io skopeo docker-registry swift swift-proxy swift-account swift-container swift-object memcached curl openssl docker-compose systemd prometheus tmux chromium fonts-dejavu-core attr)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "test dependencies already installed"
  exit 0
fi
SUDO=""; [ "$(id -u)" != 0 ] && SUDO="sudo"
made_policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  made_policy=1
fi
trap '[ -n "$made_policy" ] && $SUDO rm -f /usr/sbin/policy-rc.d' EXIT
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
