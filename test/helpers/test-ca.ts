// A throw-away certificate authority made by the real openssl in a temp dir: server certificates
// for a host name (and loopback addresses), client certificates naming a user (CN), each with a
// fresh random serial, so a renewal is a different certificate.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Issued {
  cert: string;
  key: string;
  /** The serial in upper-case hex, as X509Certificate.serialNumber spells it. */
  serial: string;
}

export interface TestCa {
  dir: string;
  /** The CA certificate (PEM) to trust. */
  cert: string;
  key: string;
  /** A server certificate for `host` (DNS or IP), 127.0.0.1 and ::1, written to `out` (.crt/.key). */
  server(host: string, out: string): Promise<Issued>;
  /** A client certificate (clientAuth) with CN=`name`, written to `out` (.cert/.key). */
  client(name: string, out: string): Promise<Issued>;
}

async function openssl(args: string[]): Promise<void> {
  await run('openssl', args, { timeout: 30_000 });
}

export async function makeTestCa(dir: string, name = 'dr-registry test CA'): Promise<TestCa> {
  const cert = path.join(dir, 'ca.crt');
  const key = path.join(dir, 'ca.key');
  await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${name}`]);

  let n = 0;
  const issue = async (cn: string, ext: string, certOut: string, keyOut: string): Promise<Issued> => {
    const base = path.join(dir, `issue-${++n}`);
    // 24 hex digits led by 1: a positive DER integer of whole bytes with no leading zero byte,
    // which serialNumber spells exactly so (an odd number of digits would gain a leading 0).
    const serial = `1${randomBytes(12).toString('hex').toUpperCase().slice(1)}`;
    await writeFile(`${base}.ext`, ext);
    await openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyOut, '-out', `${base}.csr`, '-subj', `/CN=${cn}`]);
    await openssl(['x509', '-req', '-in', `${base}.csr`, '-CA', cert, '-CAkey', key, '-set_serial', `0x${serial}`, '-days', '1', '-out', certOut, '-extfile', `${base}.ext`]);
    return { cert: certOut, key: keyOut, serial };
  };

  return {
    dir,
    cert,
    key,
    server(host, out) {
      const sans = new Set([/^[\d.]+$|:/.test(host) ? `IP:${host}` : `DNS:${host}`, 'IP:127.0.0.1', 'IP:::1']);
      return issue(host, `subjectAltName=${[...sans].join(',')}\nextendedKeyUsage=serverAuth\n`, `${out}.crt`, `${out}.key`);
    },
    client(name, out) {
      return issue(name, 'extendedKeyUsage=clientAuth\n', `${out}.cert`, `${out}.key`);
    },
  };
}
