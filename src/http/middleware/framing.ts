// How a request says where its body ends, checked once for every route before any handler runs.
// Node's parser already refuses most malformed framing (repeated or conflicting Content-Length,
// signs, non-digits, Content-Length with Transfer-Encoding, values beyond 2^64), answered as OCI
// errors by server.ts's clientError handler. What it lets through is a Content-Length above 2^53:
// no JavaScript number holds it exactly, so handlers would read it as "no length" and ignore the
// body. Anything but one decimal Content-Length up to Number.MAX_SAFE_INTEGER is refused here with
// 400 SIZE_INVALID, and the connection is closed (the body's end is unknown).
import type { Context, Next } from 'koa';
import { HttpError } from '../errors.js';

export function requestFraming() {
  return async (ctx: Context, next: Next) => {
    const values: string[] = [];
    const raw = ctx.req.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === 'content-length') values.push(raw[i + 1]!.trim());
    if (values.length > 0) {
      const value = values[0]!;
      const bad =
        values.length > 1
          ? 'Content-Length is repeated'
          : !/^[0-9]{1,16}$/.test(value) || !Number.isSafeInteger(Number(value))
            ? 'Content-Length must be a decimal integer no larger than 2^53-1'
            : ctx.get('Transfer-Encoding') !== ''
              ? 'Content-Length and Transfer-Encoding together'
              : undefined;
      if (bad) {
        ctx.set('Connection', 'close');
        throw new HttpError(400, 'SIZE_INVALID', bad, { contentLength: values.map((v) => v.slice(0, 40)) });
      }
    }
    await next();
  };
}
