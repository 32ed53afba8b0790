// Bytes a request moved, from the connection's counters (reading the body to count it would start
// it flowing before its handler). Charged from where the connection's previous request ended, not
// from this request's start: by then the socket has already read the headers and the first chunk
// of the body. Totals stay exact over a connection's requests, however they interleave.
import type { Socket } from 'node:net';
import type { Context } from 'koa';

const charged = new WeakMap<Socket, { read: number; written: number }>();

/** Bytes in and out of this request, once its response has ended; the same answer on every call. */
export function requestBytes(ctx: Context): { in: number; out: number } {
  const memo = ctx.state.requestBytes as { in: number; out: number } | undefined;
  if (memo) return memo;
  const socket = ctx.req.socket;
  const before = charged.get(socket) ?? { read: 0, written: 0 };
  const now = { read: socket.bytesRead, written: socket.bytesWritten };
  charged.set(socket, now);
  const bytes = { in: now.read - before.read, out: now.written - before.written };
  ctx.state.requestBytes = bytes;
  return bytes;
}
