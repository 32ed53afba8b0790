// Reads one byte range of an S3 object straight into a caller's buffer: a presigned GET with a
// Range header over a plain socket whose reads land in the buffer itself (net/tls `onread` with a
// buffer function), so a large read allocates nothing per socket read and copies nothing but the
// few body bytes that arrive with the response head. Node's HTTP client allocates a fresh 64 KiB
// buffer for every read instead (16,384 per GiB), which the read windows keep alive until full
// garbage collections free them: a third of a pull's CPU went there. docs/memory.md.
//
// One connection per range, closed after it: a window is 8 MiB, so the connection costs little
// against its transfer, and a connection that stalled, was cut or was aborted is never reused with
// bytes of an old answer still on its way.
//
// The answer is read strictly: 206 with exactly the bytes asked (or 200 with the whole object when
// it is exactly the range asked), a Content-Length, and no more than the buffer can hold.
import net from 'node:net';
import tls from 'node:tls';
import { IntegrityError } from './errors.js';

/** The response head is read into a buffer of this size; a longer head is an error. */
const HEAD_MAX = 16 * 1024;

/** The store answered with something other than the bytes (status, with the store's code from the body). */
export class S3AnswerError extends Error {
  override readonly name = 'S3AnswerError';
  constructor(
    readonly status: number,
    /** The store's error code (NoSuchKey, SlowDown, ...), when its body had one. */
    readonly code: string | undefined,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The answer is valid HTTP this reader does not take (chunked, or no length): the caller reads the
 * range another way (S3Store falls back to the minio client for the rest of its life).
 */
export class UnframedAnswerError extends Error {
  override readonly name = 'UnframedAnswerError';
}

export interface RangeRead {
  /** A presigned GET URL of the object (http: or https:). */
  url: string;
  /** First byte of the range. */
  from: number;
  /** Receives the range: exactly `into.length` bytes from `from` on. */
  into: Buffer;
  /** The key, for error messages. */
  key: string;
  /** Fails with ETIMEDOUT when nothing arrives this long (connecting included). */
  stallMs: number;
  signal?: AbortSignal;
  /** TLS options for https endpoints (tests: a private CA). */
  tls?: tls.ConnectionOptions;
}

/**
 * Fills `into` with the range. Settles only once the connection is closed, so when it returns or
 * throws nothing writes into `into` any more (a retry may fill it again).
 */
export function readRangeInto({ url, from, into, key, stallMs, signal, tls: tlsOptions }: RangeRead): Promise<void> {
  signal?.throwIfAborted();
  const target = new URL(url);
  const length = into.length;
  const last = from + length - 1;
  const secure = target.protocol === 'https:';
  const port = Number(target.port || (secure ? 443 : 80));
  const request = Buffer.from(
    `GET ${target.pathname}${target.search} HTTP/1.1\r\nHost: ${target.host}\r\nRange: bytes=${from}-${last}\r\nConnection: close\r\nUser-Agent: dr-registry\r\n\r\n`,
    'latin1',
  );

  return new Promise<void>((resolve, reject) => {
    let head: Buffer | undefined = Buffer.allocUnsafe(HEAD_MAX);
    let headFilled = 0;
    /** Body bytes in `into` so far. */
    let filled = 0;
    /** Error answers: their body, read for the store's code (bounded by the head buffer). */
    let errorAnswer: { status: number; body: Buffer[]; bodyBytes: number; expected: number | undefined } | undefined;
    let outcome: { err?: Error } | undefined;

    const finish = (err?: Error) => {
      if (outcome) return;
      outcome = { err };
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.destroy();
    };
    const onAbort = () => finish(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));

    // Where the next socket read lands: the head buffer until the head is parsed, then the rest of
    // the window (never past its end), or the head buffer again for an error answer's body.
    const nextBuffer = (): Buffer => {
      if (head) return head.subarray(headFilled);
      if (errorAnswer) return scratch();
      return filled < length ? into.subarray(filled) : scratch();
    };
    let spare: Buffer | undefined;
    const scratch = () => (spare ??= Buffer.allocUnsafe(HEAD_MAX));

    const onRead = (n: number, buf: Buffer): boolean => {
      if (outcome) return false;
      timer.refresh();
      if (head) {
        headFilled += n;
        let parsed: Head | undefined;
        try {
          parsed = parseHead(head.subarray(0, headFilled));
        } catch (err) {
          finish(err as Error);
          return false;
        }
        if (parsed === undefined) {
          if (headFilled === HEAD_MAX) finish(new Error(`s3 answer head for ${key} is longer than ${HEAD_MAX} bytes`));
          return true;
        }
        const rest = head.subarray(parsed.headLength, headFilled);
        head = undefined;
        const err = checkHead(parsed, rest);
        if (err) finish(err);
        return true;
      }
      if (errorAnswer) {
        errorAnswer.body.push(Buffer.from(buf.subarray(0, n)));
        errorAnswer.bodyBytes += n;
        if (errorAnswer.expected !== undefined && errorAnswer.bodyBytes >= errorAnswer.expected) finishError();
        else if (errorAnswer.bodyBytes >= HEAD_MAX) finishError();
        return true;
      }
      if (filled >= length) return true; // bytes past the answer's length: not part of it (we close)
      filled += n;
      if (filled === length) finish();
      return true;
    };

    // Checks the answer's head; copies the body bytes that came with it into the window.
    const checkHead = (parsed: Head, rest: Buffer): Error | undefined => {
      const { status, headers } = parsed;
      const contentLength = headers.get('content-length');
      const size = contentLength === undefined ? undefined : Number(contentLength);
      if (status !== 200 && status !== 206) {
        errorAnswer = { status, body: [], bodyBytes: 0, expected: size };
        if (rest.length > 0) {
          errorAnswer.body.push(Buffer.from(rest));
          errorAnswer.bodyBytes = rest.length;
        }
        if (size === undefined || errorAnswer.bodyBytes >= size) finishError();
        return undefined;
      }
      if (/chunked/i.test(headers.get('transfer-encoding') ?? '') || size === undefined || !Number.isSafeInteger(size)) {
        return new UnframedAnswerError(`s3 answer for ${key} (range ${from}-${last}) has no Content-Length`);
      }
      if (status === 200) {
        // The store ignored the Range header: acceptable only when the whole object is the range.
        if (from !== 0 || size !== length) return new Error(`s3 store ignored the range ${from}-${last} of ${key} (200 with ${size} bytes)`);
      } else {
        const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(headers.get('content-range') ?? '');
        if (!range || Number(range[1]) !== from || Number(range[2]) - from + 1 !== size) {
          return new Error(`s3 answer for ${key} has Content-Range "${headers.get('content-range') ?? ''}" for the range ${from}-${last} and ${size} bytes`);
        }
        if (size < length) return new IntegrityError(key, `object ends at ${from + size}, before the end of the range read (${from + length})`);
      }
      if (size > length) return new Error(`s3 answer for ${key} has ${size} bytes for the range ${from}-${last} (${length} bytes)`);
      const take = Math.min(rest.length, length);
      rest.copy(into, 0, 0, take);
      filled = take;
      if (filled === length) finish();
      return undefined;
    };

    const finishError = () => {
      const { status, body } = errorAnswer!;
      const text = Buffer.concat(body).toString('utf8');
      const code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1];
      const message = /<Message>([^<]*)<\/Message>/.exec(text)?.[1];
      const what = status === 404 && !code ? 'NoSuchKey' : code;
      if (status === 416 || what === 'InvalidRange') {
        finish(new IntegrityError(key, `object ends before the range read (${from}-${last})`));
        return;
      }
      finish(new S3AnswerError(status, what, `${what ?? `HTTP ${status}`}: ${message ?? `status ${status}`} (range ${from}-${last})`));
    };

    const options = {
      host: target.hostname.replace(/^\[|\]$/g, ''),
      port,
      onread: { buffer: nextBuffer, callback: onRead },
    };
    const socket = secure ? tls.connect({ ...tlsOptions, ...options, servername: net.isIP(options.host) ? undefined : options.host }) : net.connect(options);
    const timer = setTimeout(() => finish(Object.assign(new Error(`range ${from}-${last} of ${key} stalled for ${stallMs / 1000} s`), { code: 'ETIMEDOUT' })), stallMs);
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.once(secure ? 'secureConnect' : 'connect', () => {
      timer.refresh();
      socket.write(request);
    });
    socket.on('error', (err) => finish(err));
    socket.resume(); // flowing, so the end of the answer is seen (onread delivers no 'data' events)
    socket.once('close', () => {
      if (!outcome) {
        // An error answer without a length ends with the connection.
        if (errorAnswer) finishError();
        // Closed before the answer was whole: the connection broke (retried). A short object is
        // not this: its answer has a short Content-Length, checked above.
        else finish(Object.assign(new Error(`s3 connection closed after ${filled} of ${length} bytes of ${key} (range ${from}-${last})`), { code: 'ECONNRESET' }));
      }
      // The socket reads no more into `into`: only now is the outcome told.
      if (outcome!.err) reject(outcome!.err);
      else resolve();
    });
  });
}

interface Head {
  status: number;
  /** Lower-case names; the last value of a repeated header. */
  headers: Map<string, string>;
  /** Bytes of the head, the blank line included. */
  headLength: number;
}

/** The status and headers of an HTTP/1.1 answer, or undefined while its head is incomplete. */
function parseHead(bytes: Buffer): Head | undefined {
  const endAt = bytes.indexOf('\r\n\r\n', 0, 'latin1');
  if (endAt < 0) return undefined;
  const lines = bytes.toString('latin1', 0, endAt).split('\r\n');
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
  if (!status) throw new Error(`not an HTTP answer: ${JSON.stringify(lines[0]?.slice(0, 80))}`);
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return { status: Number(status[1]), headers, headLength: endAt + 4 };
}
