// Who a client certificate names (mutual TLS, docs/tls.md): the common name of a certificate that
// the server verified against tls.clientCa. A certificate that did not verify (possible with
// tls.clientAuth "optional") names nobody. Without TLS there is none.
import type { TLSSocket } from 'node:tls';
import type { Context } from 'koa';

export function clientCertificateName(ctx: Context): string | undefined {
  const socket = ctx.req.socket as Partial<TLSSocket> | null;
  if (!socket?.encrypted || socket.authorized !== true || typeof socket.getPeerCertificate !== 'function') return undefined;
  const cn = socket.getPeerCertificate().subject?.CN;
  const name = Array.isArray(cn) ? undefined : cn; // several CNs: ambiguous, nobody
  return name || undefined;
}
