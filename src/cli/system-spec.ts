// `dr-registry system`: its help, and its code loaded only when it runs (the client side is not
// part of the server's start-up).
import type { Command } from './command.js';

export const USAGE = `usage: dr-registry system backup REGISTRY/REPO:TAG CONTAINER... [options]
       dr-registry system backup REGISTRY/REPO:TAG --compose-project NAME [options]
       dr-registry system restore REGISTRY/REPO:TAG|@DIGEST [--create] [options]

backup:   commit each container to an image, snapshot its named volumes, push all of it as one
          recovery point (an OCI index tagged TAG)
restore:  pull the images, recreate the volumes with their data (they must be empty or missing),
          print the docker create commands (or, with --create, create the containers)
options: --creds USER:PASSWORD, --insecure, --json (docker daemon: DOCKER_HOST)
`;

export const systemCommandSpec: Command = {
  name: 'system',
  summary: 'images and volumes of containers as one recovery point (docs/volumes.md)',
  usage: USAGE,
  run: async (args) => (await import('./system.js')).systemCommand(args),
};
