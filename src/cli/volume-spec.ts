// `dr-registry volume`: its help, and its code loaded only when it runs (the client side is not
// part of the server's start-up).
import type { Command } from './command.js';

export const USAGE = `usage: dr-registry volume push SOURCE REGISTRY/REPO[:TAG] [options]
       dr-registry volume pull REGISTRY/REPO[:TAG|@DIGEST] DEST [options]

push:
      SOURCE: a directory, or docker:VOLUME (a volume of the daemon on DOCKER_HOST)
      --pause CONTAINER     pause this container while reading (repeatable)
      --exec-before CMD     run CMD (sh -c) before reading; a failure stops the push
      --exec-after CMD      run CMD after reading, also when the push failed
      --from REPO           try cross-repository mounts from REPO for missing chunks (repeatable)
      --parent REF          the snapshot to be incremental against: a tag or digest of the same
                            repository (default: TAG, else latest, else the newest snapshot of
                            the same SOURCE among the last 10 tags)
      --full                read every file (no parent snapshot)
pull:
      DEST: an empty directory (created if missing), or docker:VOLUME (created if missing)
common options:
  --creds USER:PASSWORD   credentials (default: docker login's config.json)
  --insecure              plain http (loopback addresses always use http)
  --json                  print one JSON object with the result
`;

export const volumeCommandSpec: Command = {
  name: 'volume',
  summary: 'volume snapshots of a directory or docker:VOLUME in any registry (docs/volumes.md)',
  usage: USAGE,
  run: async (args) => (await import('./volume.js')).volumeCommand(args),
};
