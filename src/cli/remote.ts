// The CLI's side of the admin API, for the recovery site: a running registry at --url (or
// DRREG_URL), with admin.token (--token or DRREG_ADMIN_TOKEN) or an admin user (--user or
// DRREG_USER, the password from DRREG_PASSWORD or a prompt). Every failure is one line and an exit
// code per kind (src/cli/command.ts).
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { CliError, EXIT, usageError } from './command.js';

/** parseArgs options every command that talks to a registry takes. */
export const REMOTE_OPTIONS = {
  url: { type: 'string' },
  token: { type: 'string' },
  user: { type: 'string', short: 'u' },
  json: { type: 'boolean' },
} as const;

export const REMOTE_HELP = `connection:
      --url URL       the registry (default: DRREG_URL)
      --token TOKEN   admin.token of the registry (default: DRREG_ADMIN_TOKEN)
  -u, --user NAME     an admin user of auth.admins instead (default: DRREG_USER); the password
                      comes from DRREG_PASSWORD or is asked on the terminal
      --json          print JSON instead of a table

exit codes: 0 ok, 2 bad arguments, 3 registry unreachable, 4 credentials refused, 5 not found,
            1 any other failure`;

export interface RemoteValues {
  url?: string;
  token?: string;
  user?: string;
}

export class AdminClient {
  constructor(
    readonly baseUrl: string,
    private readonly authorization: string | undefined,
  ) {}

  static async connect(values: RemoteValues, env: NodeJS.ProcessEnv = process.env): Promise<AdminClient> {
    const raw = values.url ?? env.DRREG_URL;
    if (!raw) throw usageError('no registry given: use --url URL or set DRREG_URL');
    let url: URL;
    try {
      url = new URL(raw);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http');
    } catch {
      throw usageError(`--url ${raw} is not an http(s) URL`);
    }
    const base = url.href.replace(/\/+$/, '');
    const token = values.token ?? env.DRREG_ADMIN_TOKEN;
    const user = values.user ?? env.DRREG_USER;
    if (user && !values.token) {
      const password = env.DRREG_PASSWORD ?? (await promptPassword(`password for ${user}: `));
      return new AdminClient(base, `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`);
    }
    return new AdminClient(base, token ? `Bearer ${token}` : undefined);
  }

  /** Calls /admin/v1<path>; the JSON answer, or undefined for 204. */
  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(`${this.baseUrl}/admin/v1${path}`, {
        method,
        headers: {
          ...(this.authorization ? { Authorization: this.authorization } : {}),
          ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(60_000),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message ?? (err as Error).message;
      throw new CliError(`cannot reach the registry at ${this.baseUrl}: ${why}`, EXIT.unreachable);
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (res.ok) return json as T;
    throw this.failure(res.status, json, path);
  }

  private failure(status: number, body: unknown, path: string): CliError {
    const first = (body as { errors?: Array<{ code?: string; message?: string; detail?: unknown }> } | undefined)?.errors?.[0];
    const said = first ? `${first.code}: ${first.message}` : `HTTP ${status}`;
    if (status === 401 || status === 403) {
      const hint = this.authorization ? '' : ' (no credentials given: --token, DRREG_ADMIN_TOKEN or --user)';
      return new CliError(`the registry at ${this.baseUrl} refused the credentials: ${said}${hint}`, EXIT.unauthorized);
    }
    if (status === 404) {
      if (first?.code === 'NOT_FOUND' || !first) {
        return new CliError(`the registry at ${this.baseUrl} has no admin API at /admin/v1${path.split('?')[0]} (is admin.token or auth.admins set there?)`, EXIT.notFound);
      }
      const detail = first.detail as { name?: string; reference?: string } | undefined;
      if (first.code === 'NAME_UNKNOWN') return new CliError(`no repository ${detail?.name ?? ''} in the registry`, EXIT.notFound);
      if (first.code === 'MANIFEST_UNKNOWN') return new CliError(`no recovery point ${detail?.reference ?? ''} in that repository`, EXIT.notFound);
      return new CliError(said, EXIT.notFound);
    }
    if (status === 400) return new CliError(`the registry refused the request: ${first?.message ?? said}`, EXIT.usage);
    return new CliError(`the registry answered ${status}: ${said}`, EXIT.failed);
  }
}

async function promptPassword(question: string): Promise<string> {
  if (!process.stdin.isTTY) throw usageError('--user needs a password: set DRREG_PASSWORD (no terminal to ask on)');
  let muted = false;
  const output = new Writable({
    write(chunk, _encoding, done) {
      if (!muted) process.stderr.write(chunk as Buffer);
      done();
    },
  });
  const rl = createInterface({ input: process.stdin, output, terminal: true });
  try {
    const answer = new Promise<string>((resolve) => rl.question(question, resolve));
    muted = true;
    const password = await answer;
    process.stderr.write('\n');
    return password;
  } finally {
    rl.close();
  }
}

/** Columns padded to their widest cell; the last column is not padded. */
export function table(header: string[], rows: string[][]): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n') + '\n';
}

/** 93784 -> "1d2h", 4000 -> "1h6m", 59 -> "59s". */
export function humanSeconds(seconds: number): string {
  const units: Array<[string, number]> = [['d', 86_400], ['h', 3600], ['m', 60], ['s', 1]];
  const parts: string[] = [];
  let rest = Math.floor(seconds);
  for (const [unit, size] of units) {
    if (rest >= size || (unit === 's' && parts.length === 0)) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
    if (parts.length === 2) break;
  }
  return parts.join('');
}
