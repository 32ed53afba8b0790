#!/usr/bin/env bash
# Makes the secrets docker-compose.yml mounts, once, in ./secrets (or $1): MinIO's root user and
# password, the registry's config with the S3 keys, a token-auth secret and an admin user (its
# password, random, in admin_password), and a new encryption keyring. Needs `npm ci` first (it
# runs the registry's own CLI). Refuses to overwrite: rotating is a deliberate act.
# The directory is 0700; the files in it are 0644 because compose bind-mounts each file as it is
# and the registry runs as the image's user "node", not as you.
set -euo pipefail
cd "$(dirname "$0")/../.."
dir="${1:-secrets}"
cli=(node --import tsx src/main.ts)
if [ -e "$dir/registry.yml" ] || [ -e "$dir/keyring.yml" ]; then
  echo "make-secrets: $dir already holds secrets; remove them first to make new ones" >&2
  exit 1
fi
mkdir -p "$dir"
chmod 0700 "$dir"
umask 0022
random() { node -e "process.stdout.write(require('node:crypto').randomBytes(24).toString('base64url'))"; }

printf 'dr-registry' > "$dir/minio_root_user"
minio_password="$(random)"
printf '%s' "$minio_password" > "$dir/minio_root_password"
admin_password="$(random)"
printf '%s\n' "$admin_password" > "$dir/admin_password"
auth_secret="$("${cli[@]}" auth secret)"
admin_hash="$(printf '%s' "$admin_password" | "${cli[@]}" auth hash-password)"

cat > "$dir/registry.yml" <<YAML
# The registry's secret settings, made by deploy/compose/make-secrets.sh; docker-compose.yml
# mounts this file as the secret registry_config. Add users with \`dr-registry auth hash-password\`.
storage:
  s3:
    accessKey: dr-registry
    secretKey: "$minio_password"
auth:
  secret: "$auth_secret"
  users:
    - name: admin
      password: '$admin_hash'
  admins: [admin]
  # No rule names "anonymous": a client without credentials can do nothing.
  access:
    - repositories: "*"
      users: [admin]
      actions: [pull, push]
YAML

"${cli[@]}" keys generate --keyring "$dir/keyring.yml" >/dev/null
chmod 0644 "$dir"/*
echo "secrets written to $dir (back up keyring.yml: without it the store cannot be read)"
echo "admin password: in $dir/admin_password"
