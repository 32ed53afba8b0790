// The requests a server is answering, so that shutdown can wait for them (a bounded drain) and
// then name each one it cuts: an upload cut by a restart must be visible in the log, since its
// client has to start it again.
import type http from 'node:http';
import type { Logger } from '../logger.js';

interface Entry {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  started: number;
}

export class InFlight {
  private readonly entries = new Set<Entry>();
  private readonly idle: Array<() => void> = [];

  constructor(server: http.Server) {
    server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      const entry = { req, res, started: Date.now() };
      this.entries.add(entry);
      res.once('close', () => {
        this.entries.delete(entry);
        if (this.entries.size === 0) for (const wake of this.idle.splice(0)) wake();
      });
    });
  }

  get size(): number {
    return this.entries.size;
  }

  /** Resolves when no request is in flight, or after `ms`; true when they all finished. */
  drained(ms: number): Promise<boolean> {
    if (this.entries.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(this.entries.size === 0), ms);
      timer.unref();
      this.idle.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /** One line per request still running: what shutdown is about to cut. */
  logCut(log: Logger): number {
    for (const { req, res, started } of this.entries) {
      const path = (req.url ?? '').split('?')[0]!.slice(0, 300);
      const upload = /\/blobs\/uploads\//.test(path) && req.method !== 'GET';
      const fields = {
        method: req.method,
        path,
        requestId: res.getHeader('X-Request-Id'),
        bytesIn: req.socket?.bytesRead,
        ms: Date.now() - started,
        upload,
      };
      log.warn(fields, upload ? 'upload cut by shutdown' : 'request cut by shutdown');
    }
    return this.entries.size;
  }
}
