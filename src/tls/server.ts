// TLS in the registry itself: an HTTPS server (TLS 1.2 and 1.3) on the certificate and key of
// tls.*, optionally asking clients for certificates signed by tls.clientCa (mutual TLS), and
// serving a renewed certificate without a restart: the files are re-read every
// tls.reloadInterval and, when their bytes changed and the new pair is valid, installed for new
// connections with setSecureContext. A half-written renewal (certificate written, key not yet) is
// logged and retried on the next check; the old certificate is served meanwhile.
//
// HTTP/2 is not offered: docker (Go with its own TLS configuration) and skopeo send no ALPN and
// speak HTTP/1.1 whatever the server offers (docs/tls.md), so HTTP/2 would add code on every
// request path and pay off for no registry client.
import { createHash, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import https from 'node:https';
import type http from 'node:http';
import tls from 'node:tls';
import { ConfigError, envName, type Config } from '../config/index.js';
import type { Logger } from '../logger.js';

export type TlsConfig = Config['tls'];

/** What the server loaded: the PEM bytes and a fingerprint of all of them. */
interface Material {
  cert: Buffer;
  key: Buffer;
  ca?: Buffer;
  fingerprint: string;
}

/** The facts of a certificate worth logging: who it names, its serial, until when it is valid. */
export function describeCertificate(pem: Buffer): { subject: string; serial: string; validTo: string; fingerprint256: string } {
  const cert = new X509Certificate(pem);
  return { subject: cert.subject.replace(/\n/g, ', '), serial: cert.serialNumber, validTo: new Date(cert.validTo).toISOString(), fingerprint256: cert.fingerprint256 };
}

const SETTINGS = { certificate: ['tls', 'certificate'], key: ['tls', 'key'], clientCa: ['tls', 'clientCa'] } as const;

function settingName(which: keyof typeof SETTINGS): string {
  return `${SETTINGS[which].join('.')} (${envName([...SETTINGS[which]])})`;
}

async function readMaterial(config: TlsConfig): Promise<Material> {
  const read = async (which: keyof typeof SETTINGS, file: string) => {
    try {
      return await readFile(file);
    } catch (err) {
      throw new ConfigError(`${settingName(which)}: cannot read ${file}: ${(err as Error).message}`);
    }
  };
  const [cert, key, ca] = await Promise.all([
    read('certificate', config.certificate),
    read('key', config.key),
    config.clientCa ? read('clientCa', config.clientCa) : undefined,
  ]);
  const hash = createHash('sha256').update(cert).update('\0').update(key);
  if (ca) hash.update('\0').update(ca);
  return { cert, key, ca, fingerprint: hash.digest('hex') };
}

/** The secure-context options of the material; throws ConfigError naming the setting at fault. */
function contextOptions(m: Material, config: TlsConfig): tls.SecureContextOptions {
  try {
    new X509Certificate(m.cert);
  } catch (err) {
    throw new ConfigError(`${settingName('certificate')}: ${config.certificate} holds no PEM certificate (${(err as Error).message})`);
  }
  if (m.ca) {
    try {
      new X509Certificate(m.ca);
    } catch (err) {
      throw new ConfigError(`${settingName('clientCa')}: ${config.clientCa} holds no PEM certificate (${(err as Error).message})`);
    }
  }
  const options: tls.SecureContextOptions = { cert: m.cert, key: m.key, ca: m.ca, minVersion: 'TLSv1.2' };
  try {
    tls.createSecureContext(options);
  } catch (err) {
    const message = (err as Error).message;
    const which = /key values mismatch/i.test(message) ? 'key' : /key|decoder|PEM/i.test(message) ? 'key' : 'certificate';
    const detail = /key values mismatch/i.test(message) ? `does not belong to the certificate in ${config.certificate}` : `cannot be used: ${message}`;
    throw new ConfigError(`${settingName(which)}: ${config[which]} ${detail}`);
  }
  return options;
}

export interface TlsServer {
  server: https.Server;
  /** Checks the files once now (the timer does it every tls.reloadInterval); true when a new certificate was installed. */
  reload(): Promise<boolean>;
  /** Stops watching the files. */
  stop(): void;
}

/**
 * An HTTPS server for `listener` on the files of `config`. Fails with a ConfigError naming the
 * setting when a file cannot be read or the pair is not usable, so start-up stops.
 */
export async function createTlsServer(listener: http.RequestListener, config: TlsConfig, logger: Logger): Promise<TlsServer> {
  const log = logger.child({ module: 'tls' });
  let current = await readMaterial(config);
  const options = contextOptions(current, config);
  const server = https.createServer(
    {
      ...options,
      // Mutual TLS: with "required" the handshake fails without a certificate the CA signed;
      // with "optional" a client may come without one (and is then no certificate user).
      requestCert: !!config.clientCa,
      rejectUnauthorized: !!config.clientCa && config.clientAuth === 'required',
      ALPNProtocols: ['http/1.1'],
    },
    listener,
  );
  server.on('tlsClientError', (err: Error & { code?: string }, socket: tls.TLSSocket) => {
    log.debug({ client: socket.remoteAddress, code: err.code, reason: err.message }, 'tls handshake failed');
  });
  log.info({ ...describeCertificate(current.cert), clientAuth: config.clientCa ? config.clientAuth : 'off' }, 'tls certificate loaded');

  let failed: string | undefined; // the fingerprint whose failure was logged, to log it once
  const reload = async (): Promise<boolean> => {
    let next: Material;
    try {
      next = await readMaterial(config);
      if (next.fingerprint === current.fingerprint) return false;
      server.setSecureContext(contextOptions(next, config));
    } catch (err) {
      const key = (err as Error).message;
      if (failed !== key) log.warn({ reason: key }, 'tls certificate reload failed; serving the previous one');
      failed = key;
      return false;
    }
    current = next;
    failed = undefined;
    log.info(describeCertificate(current.cert), 'tls certificate reloaded');
    return true;
  };
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    reload().finally(() => (running = false));
  }, config.reloadInterval);
  timer.unref();
  return { server, reload, stop: () => clearInterval(timer) };
}
