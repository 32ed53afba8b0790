// Requests Node's HTTP parser refuses before Koa sees them (malformed framing, oversized headers,
// a header timeout): answered with the OCI error body like every other error, instead of Node's
// bare "400 Bad Request", and logged at debug level without a stack: a client's mistake or a
// client going away is not a server error.
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from '../logger.js';

const FRAMING = new Set(['HPE_INVALID_CONTENT_LENGTH', 'HPE_UNEXPECTED_CONTENT_LENGTH', 'HPE_INVALID_TRANSFER_ENCODING', 'HPE_INVALID_CHUNK_SIZE']);

export function answerClientErrors(server: http.Server, logger: Logger): void {
  const log = logger.child({ module: 'http' });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    const code = err.code ?? 'UNKNOWN';
    // A response already under way on this connection, or a connection gone (its request, if
    // any, has its own log line saying aborted), gets nothing more, and no log line.
    const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (code === 'ECONNRESET' || code === 'HPE_INVALID_EOF_STATE' || !socket.writable || inFlight?.headersSent) {
      socket.destroy();
      return;
    }
    log.debug({ code, reason: err.message }, 'malformed request');
    const [status, text, ociCode, message] =
      code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'Request Header Fields Too Large', 'BAD_REQUEST', 'request headers too large']
        : code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? [408, 'Request Timeout', 'BAD_REQUEST', 'request headers not received in time']
          : FRAMING.has(code)
            ? [400, 'Bad Request', 'SIZE_INVALID', 'invalid Content-Length or Transfer-Encoding']
            : [400, 'Bad Request', 'BAD_REQUEST', 'malformed HTTP request'];
    const body = JSON.stringify({ errors: [{ code: ociCode, message, detail: { reason: code } }] });
    socket.end(
      `HTTP/1.1 ${status} ${text}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  });
}
