// Credentials for a registry: `--creds user:pass`, else docker's config.json (`docker login`),
// whose `auths` entries carry base64 "user:pass". Credential helpers (credsStore, credHelpers)
// run external programs; we do not, and say so.
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';

export interface Credentials {
  username: string;
  password: string;
}

export function parseCreds(value: string): Credentials {
  const i = value.indexOf(':');
  if (i <= 0) throw new Error('--creds must be USER:PASSWORD');
  return { username: value.slice(0, i), password: value.slice(i + 1) };
}

interface DockerConfig {
  auths?: Record<string, { auth?: string; username?: string; password?: string }>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
}

/** Credentials for `registry` from docker's config.json, or undefined. `warn` gets notes for the user. */
export function dockerCredentials(
  registry: string,
  options: { configDir?: string; warn?: (message: string) => void } = {},
): Credentials | undefined {
  const dir = options.configDir ?? process.env.DOCKER_CONFIG ?? path.join(homedir(), '.docker');
  let config: DockerConfig;
  try {
    config = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')) as DockerConfig;
  } catch {
    return undefined;
  }
  const keys = registry === 'docker.io' ? ['https://index.docker.io/v1/', 'index.docker.io', 'docker.io'] : [registry, `https://${registry}`, `http://${registry}`];
  for (const key of keys) {
    const entry = config.auths?.[key];
    if (!entry) continue;
    if (entry.auth) {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const i = decoded.indexOf(':');
      if (i > 0) return { username: decoded.slice(0, i), password: decoded.slice(i + 1) };
    }
    if (entry.username && entry.password) return { username: entry.username, password: entry.password };
  }
  const helper = config.credHelpers?.[registry] ?? config.credsStore;
  if (helper) options.warn?.(`docker config names credential helper "${helper}", which dr-registry does not run; pass --creds USER:PASSWORD`);
  return undefined;
}
