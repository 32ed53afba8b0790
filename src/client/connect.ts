// A client for a reference, with the usual credentials: --creds, else docker login's config.
import { dockerCredentials, parseCreds, type Credentials } from './credentials.js';
import { RegistryClient } from './registry-client.js';
import type { Reference } from './reference.js';

export interface ConnectOptions {
  creds?: string;
  insecure?: boolean;
  /** Extra scopes (e.g. pull on repositories to mount from). */
  scopes?: string[];
  push?: boolean;
  warn?: (message: string) => void;
}

export function credentialsFor(registry: string, options: ConnectOptions): Credentials | undefined {
  return options.creds ? parseCreds(options.creds) : dockerCredentials(registry, { warn: options.warn });
}

export function connect(ref: Reference, options: ConnectOptions = {}): RegistryClient {
  return new RegistryClient({
    registry: ref.registry,
    credentials: credentialsFor(ref.registry, options),
    insecure: options.insecure,
    scopes: [`repository:${ref.repository}:${options.push ? 'pull,push' : 'pull'}`, ...(options.scopes ?? [])],
    userAgent: 'dr-registry-volume',
  });
}
