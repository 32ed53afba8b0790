// Bytes a request moved, from the connection's counters (reading the body to count it would start
// it flowing before its handler). Charged from where the connection's previous request ended, not
// from this request's start: by then the socket has already read the headers and the first chunk
// of the body. Totals stay exact over a connection's requests, however they interleave.
import type { Socket } from 'node:net';
import type { Context } from 'koa';

const charged = new WeakMap<Socket, { read: number; written: number }>();

/** Remembers the request's connection: when the response closes, `ctx.req.socket` may be gone. */
export function noteConnection(ctx: Context): void {
  ctx.state.connection ??= ctx.req.socket;
}

/** Bytes in and out of this request, once its response has ended; the same answer on every call. */
export function requestBytes(ctx: Context): { in: number; out: number } {
  const memo = ctx.state.requestBytes as { in: number; out: number } | undefined;
  if (memo) return memo;
  const socket = (ctx.state.connection ?? ctx.req.socket) as Socket | null | undefined;
  if (!socket) return (ctx.state.requestBytes = { in: 0, out: 0 });
  const before = charged.get(socket) ?? { read: 0, written: 0 };
  const now = { read: socket.bytesRead, written: socket.bytesWritten };
  charged.set(socket, now);
  const bytes = { in: now.read - before.read, out: now.written - before.written };
  ctx.state.requestBytes = bytes;
  return bytes;
}
