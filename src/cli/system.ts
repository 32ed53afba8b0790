// `dr-registry system backup REF CONTAINER...|--compose-project NAME` and `system restore REF`:
// whole-system recovery points (images and volumes of a set of containers) in one tagged index.
import { subcommandArgs } from './command.js';
import { USAGE } from './system-spec.js';
import { connect, credentialsFor } from '../client/connect.js';
import { DockerEngine } from '../client/docker-engine.js';
import { parseReference } from '../client/reference.js';
import { backupSystem, restoreSystem } from '../system/recovery-point.js';


const options = {
  json: { type: 'boolean' },
  creds: { type: 'string' },
  insecure: { type: 'boolean' },
  create: { type: 'boolean' },
  'compose-project': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function systemCommand(argv: string[]): Promise<number> {
  const parsed = subcommandArgs(argv, ['backup', 'restore'], options, USAGE, (n) => n > 0);
  if (typeof parsed === 'number') return parsed;
  const { sub, values, positionals } = parsed;
  const step = (m: string) => {
    if (!values.json) process.stderr.write(`${m}\n`);
  };
  const warn = (m: string) => process.stderr.write(`warning: ${m}\n`);
  try {
    const ref = parseReference(positionals[0]!);
    const engine = new DockerEngine();
    const credentials = credentialsFor(ref.registry, { creds: values.creds, warn });
    if (sub === 'backup') {
      if (!ref.tag || ref.digest) throw new Error('backup needs REGISTRY/REPO:TAG');
      let containers = positionals.slice(1);
      const project = values['compose-project'];
      if (project) containers = [...containers, ...(await engine.containersWithLabel(`com.docker.compose.project=${project}`))];
      if (containers.length === 0) throw new Error('name at least one container, or --compose-project NAME');
      const client = connect(ref, { creds: values.creds, insecure: values.insecure, push: true, warn });
      const result = await backupSystem({ engine, client, registry: ref.registry, repo: ref.repository, tag: ref.tag, containers, credentials, onStep: step });
      if (values.json) console.log(JSON.stringify(result));
      else console.log(`${result.reference}@${result.digest}: ${result.containers.length} containers, ${result.containers.reduce((n, c) => n + c.volumes.length, 0)} volumes`);
      return 0;
    }
    if (positionals.length !== 1) throw new Error('restore takes one reference');
    const client = connect(ref, { creds: values.creds, insecure: values.insecure, warn });
    const result = await restoreSystem({ engine, client, registry: ref.registry, repo: ref.repository, reference: ref.digest ?? ref.tag!, create: values.create, credentials, onStep: step });
    if (values.json) console.log(JSON.stringify(result));
    else for (const c of result.containers) console.log(c.created ? `created ${c.name}` : c.command);
    return 0;
  } catch (err) {
    process.stderr.write(`error: ${(err as Error).message}\n`);
    return 1;
  }
}
