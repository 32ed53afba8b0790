// Starts the real registry on an ephemeral port for a test, on a fresh filesystem root (or a store
// the test provides), and removes everything afterwards.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig, type Config } from '../../src/config/index.js';
import { createLogger } from '../../src/logger.js';
import { startRegistry, type RunningRegistry } from '../../src/server.js';
import type { ObjectStore } from '../../src/storage/driver.js';

export interface TestRegistry extends RunningRegistry {
  /** host:port, as docker and skopeo want it. */
  hostPort: string;
  root: string;
  config: Config;
  stop(): Promise<void>;
}

export interface RequestLine {
  requestId: string;
  method: string;
  path: string;
  status: number;
  bytesIn: number;
  bytesOut: number;
  user?: string;
  client?: string;
}

export async function startTestRegistry(
  options: {
    env?: Record<string, string>;
    store?: ObjectStore;
    root?: string;
    requests?: RequestLine[];
    /** Every log line, parsed, at debug level and above. */
    logLines?: Array<Record<string, unknown>>;
  } = {},
): Promise<TestRegistry> {
  const root = options.root ?? (await mkdtemp(path.join(tmpdir(), 'drreg-test-')));
  const config = loadConfig({
    env: {
      DRREG_LISTEN: '127.0.0.1:0',
      DRREG_STORAGE_FILESYSTEM_ROOT: root,
      DRREG_STORAGE_FILESYSTEM_FSYNC: 'false',
      // Tests that delete, prune or collect need no lock; test/immutability sets one explicitly.
      DRREG_RETENTION_LOCK: '0',
      DRREG_LOG_LEVEL: process.env.DRREG_TEST_LOG_LEVEL ?? 'silent',
      ...options.env,
    },
  });
  // When the test wants to see the requests, keep the per-request log lines in memory.
  const { requests, logLines } = options;
  const logger =
    requests || logLines
      ? createLogger(logLines ? 'debug' : 'info', {
          write(line: string) {
            const entry = JSON.parse(line) as RequestLine & { msg: string };
            if (entry.msg === 'request') requests?.push(entry);
            logLines?.push(entry as unknown as Record<string, unknown>);
          },
        })
      : createLogger(config.log.level);
  const running = await startRegistry(config, logger, options.store);
  return {
    ...running,
    hostPort: `127.0.0.1:${running.port}`,
    root,
    config,
    async stop() {
      await running.close();
      if (!options.root) await rm(root, { recursive: true, force: true });
    },
  };
}
