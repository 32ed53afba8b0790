// Starts and stops one registry process: store check, HTTP server with deliberate timeouts, the
// janitor that expires abandoned uploads, and the metrics server when metrics.listen is set.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApp } from './app.js';
import { AuditLog } from './audit/log.js';
import { answerClientErrors } from './http/client-errors.js';
import { InFlight } from './http/in-flight.js';
import type { Config } from './config/index.js';
import type { Logger } from './logger.js';
import { Metrics } from './metrics.js';
import { Registry, type RegistryOptions } from './registry/registry.js';
import { Maintenance } from './retention/maintenance.js';
import { sweepUploadData } from './retention/upload-data.js';
import type { ObjectStore } from './storage/driver.js';
import { createStore } from './storage/index.js';
import { DeadlineStore } from './storage/deadline.js';
import { MeteredStore } from './storage/metered.js';
import { createTlsServer } from './tls/server.js';

export interface RunningRegistry {
  url: string;
  port: number;
  registry: Registry;
  maintenance: Maintenance;
  store: ObjectStore;
  /** This process's audit chain (docs/audit.md). */
  audit: AuditLog;
  /** An https.Server (same timeouts and close methods) when tls.certificate is set. */
  server: http.Server;
  metrics: Metrics;
  /** With TLS: checks the certificate files now (they are also checked every tls.reloadInterval). */
  reloadTls?: () => Promise<boolean>;
  /** The metrics server's URL when metrics.listen is set. */
  metricsUrl?: string;
  close(): Promise<void>;
}

export async function startRegistry(config: Config, logger: Logger, givenStore?: ObjectStore): Promise<RunningRegistry> {
  const metrics = new Metrics();
  // Every call has a deadline (a hung store answers 503 within seconds); the metrics see the
  // calls as clients do, deadlines included.
  const { call, idle, maxInFlight } = config.storage.deadlines;
  const store = new MeteredStore(new DeadlineStore(givenStore ?? (await createStore(config)), { callMs: call, idleMs: idle, maxInFlight }), metrics);
  await store.check();
  const registry = new Registry(store, registryOptions(config));
  const audit = new AuditLog(store, { flushIntervalMs: config.audit.flushInterval, retentionMs: config.audit.retention, logger: logger.child({ module: 'audit' }) }).start();
  registry.setAudit(audit);
  // retention.lock into the store's lock history: raised at once, lowered only later.
  await registry.protection.applyConfigured(config.retention.lock);
  const maintenance = new Maintenance(registry, config, logger, metrics);
  maintenance.audit = audit;
  const app = createApp({ config, registry, maintenance, logger, metrics });
  // HTTPS when tls.certificate is set (docs/tls.md); a bad file stops start-up here, naming it.
  const tlsServer = config.tls.certificate ? await createTlsServer(app.callback(), config.tls, logger) : undefined;
  const server = (tlsServer?.server as unknown as http.Server | undefined) ?? http.createServer(app.callback());
  answerClientErrors(server, logger);
  const inFlight = new InFlight(server);
  // Node ends any request after requestTimeout (300 s by default): a multi-GB push on a slow link
  // would die. Bound idle sockets and slow headers instead.
  server.requestTimeout = 0;
  server.headersTimeout = config.http.headersTimeout;
  server.timeout = config.http.idleTimeout;
  server.keepAliveTimeout = 65_000;

  const { url, port } = await listenOn(server, config.listen, tlsServer ? 'https' : 'http');
  const metricsServer = config.metrics.listen ? http.createServer(metricsHandler(metrics.withProcessMetrics())) : undefined;
  let metricsUrl: string | undefined;
  try {
    metricsUrl = metricsServer ? (await listenOn(metricsServer, config.metrics.listen)).url : undefined;
  } catch (err) {
    server.close(); // a start-up that fails leaves nothing listening
    tlsServer?.stop();
    throw err;
  }

  const log = logger.child({ module: 'janitor' });
  let lastDataSweep = 0;
  const janitor = setInterval(() => {
    const cleanup = async () => {
      const sessions = await registry.uploads.expire(config.uploads.maxAge);
      // The data sweep reads every blob index: at most once per maxAge. Data of expired sessions
      // is as old as they are; committed data is never touched.
      let data = { parts: 0, bytes: 0 };
      if (Date.now() - lastDataSweep >= config.uploads.maxAge) {
        lastDataSweep = Date.now();
        data = await sweepUploadData(store, { olderThanMs: Date.now() - config.uploads.maxAge });
      }
      if (sessions > 0 || data.parts > 0) log.info({ sessions, parts: data.parts, bytes: data.bytes }, 'expired uploads removed');
    };
    cleanup().catch((err: unknown) => log.warn({ err }, 'upload expiry failed'));
  }, Math.max(config.uploads.cleanupInterval, 1000));
  janitor.unref();
  maintenance.schedule();

  logger.info({ url, listen: config.listen, storage: store.description, metrics: metricsUrl }, 'registry listening');
  return {
    url,
    port,
    registry,
    maintenance,
    store,
    audit,
    server,
    metrics,
    metricsUrl,
    reloadTls: tlsServer?.reload,
    async close() {
      clearInterval(janitor);
      tlsServer?.stop();
      // A scheduled collection in progress may finish within the drain; one cut is safe (online GC).
      const maintenanceStopped = maintenance.stop(config.shutdown.drain);
      metricsServer?.close();
      metricsServer?.closeAllConnections();
      // Stop accepting, let requests in flight finish for at most shutdown.drain, then cut the
      // rest, naming each (docs/security.md: an upload cut by a restart must be visible).
      const shutdownLog = logger.child({ module: 'shutdown' });
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      if (inFlight.size > 0) shutdownLog.info({ inFlight: inFlight.size, drainMs: config.shutdown.drain }, 'draining requests');
      if (!(await inFlight.drained(config.shutdown.drain))) {
        const cut = inFlight.logCut(shutdownLog);
        shutdownLog.warn({ cut }, 'drain time over, cutting requests');
      }
      server.closeAllConnections();
      await closed;
      await maintenanceStopped;
      await audit.close();
      await store.close?.();
    },
  };
}

export function registryOptions(config: Config): RegistryOptions {
  return {
    maxManifestBytes: config.manifests.maxSize,
    maxManifestReferences: config.manifests.maxReferences,
    tagCacheTtlMs: config.cache.tagTtl,
    blobIndexCacheEntries: config.cache.blobIndexEntries,
    gcGraceMs: config.gc.grace,
    gcSweepDelayMs: config.gc.sweepDelay,
  };
}

async function listenOn(server: http.Server, listen: string, scheme = 'http'): Promise<{ url: string; port: number }> {
  const { host, port } = splitListen(listen);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const urlHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return { url: `${scheme}://${urlHost === '0.0.0.0' ? '127.0.0.1' : urlHost}:${address.port}`, port: address.port };
}

/** GET /metrics in Prometheus' text format; nothing else. */
function metricsHandler(metrics: Metrics): http.RequestListener {
  return (req, res) => {
    if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    metrics.register.metrics().then(
      (text) => res.writeHead(200, { 'Content-Type': metrics.register.contentType }).end(text),
      () => res.writeHead(500).end(),
    );
  };
}

function splitListen(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  const host = listen.slice(0, i).replace(/^\[(.*)\]$/, '$1');
  return { host: host || '0.0.0.0', port: Number(listen.slice(i + 1)) };
}
