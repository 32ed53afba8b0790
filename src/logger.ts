// Structured JSON logs (pino). Messages are static and lower case; values go in fields.
import pino, { type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'dr-registry' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: ['*.secretKey', '*.accessKey', '*.authorization', 'req.headers.authorization'], remove: true },
    },
    destination,
  );
}
