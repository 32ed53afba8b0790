// Starts the real services the suite needs, once per run: OpenStack Swift with its S3 API (the
// object store) and a private docker daemon (the real client). Tests read their addresses with
// inject('swiftEndpoint') and inject('dockerHost').
import type { TestProject } from 'vitest/node';
import { ensureDockerd } from './services/dockerd.js';
import { ensureSwift } from './services/swift.js';

declare module 'vitest' {
  export interface ProvidedContext {
    swiftEndpoint: string;
    dockerHost: string;
  }
}

export default async function setup(project: TestProject) {
  const [swift, dockerd] = await Promise.all([ensureSwift(), ensureDockerd()]);
  project.provide('swiftEndpoint', swift.endpoint);
  project.provide('dockerHost', dockerd.host);
  return async () => {
    await dockerd.stop();
    await swift.stop?.();
  };
}
