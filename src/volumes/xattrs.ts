// Extended attributes. Node has no xattr API, so these use getfattr/setfattr (Debian package
// `attr`), one process per tree each way. Without them no xattrs are recorded or restored, and
// `xattrSupport()` says so.
import { spawn, spawnSync } from 'node:child_process';

let support: boolean | undefined;
export function xattrSupport(): boolean {
  support ??= spawnSync('getfattr', ['--version']).status === 0 && spawnSync('setfattr', ['--version']).status === 0;
  return support;
}

/** getfattr's quoting: backslash + three octal digits for special bytes. */
function unquote(s: string): Buffer {
  const raw = Buffer.from(s, 'latin1');
  const out: number[] = [];
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] === 0x5c && i + 3 < raw.length + 0 && /^[0-7]{3}$/.test(raw.subarray(i + 1, i + 4).toString('latin1'))) {
      out.push(parseInt(raw.subarray(i + 1, i + 4).toString('latin1'), 8));
      i += 3;
    } else out.push(raw[i]!);
  }
  return Buffer.from(out);
}

function quote(b: Buffer): string {
  let s = '';
  for (const c of b) s += c <= 0x20 || c >= 0x7f || c === 0x5c || c === 0x3d ? `\\${c.toString(8).padStart(3, '0')}` : String.fromCharCode(c);
  return s;
}

function run(cmd: string, args: string[], input?: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(Buffer.concat(out));
      else reject(new Error(`${cmd} failed: ${Buffer.concat(err).toString().trim()}`));
    });
    child.stdin.end(input);
  });
}

/** Every xattr under `root` (not following symlinks): path relative to root (latin1 key) -> name -> base64 value. */
export async function readXattrs(root: Buffer): Promise<Map<string, Record<string, string>>> {
  const out = new Map<string, Record<string, string>>();
  if (!xattrSupport()) return out;
  const dump = await run('getfattr', ['-R', '-P', '-h', '--absolute-names', '-d', '-m', '-', '-e', 'base64', root.toString('latin1')]).catch(() => Buffer.alloc(0));
  let current: Record<string, string> | undefined;
  const rootQuoted = unquote(root.toString('latin1')).toString('latin1').replace(/\/+$/, '');
  for (const line of dump.toString('latin1').split('\n')) {
    if (line.startsWith('# file: ')) {
      const abs = unquote(line.slice(8)).toString('latin1');
      const rel = abs === rootQuoted ? '.' : abs.startsWith(`${rootQuoted}/`) ? abs.slice(rootQuoted.length + 1) : undefined;
      current = rel === undefined ? undefined : {};
      if (rel !== undefined) out.set(rel, current!);
    } else if (current && line.includes('=')) {
      const eq = line.indexOf('=');
      const name = unquote(line.slice(0, eq)).toString('utf8');
      let value = line.slice(eq + 1);
      value = value.startsWith('0s') ? value.slice(2) : value === '' ? '' : Buffer.from(value.replace(/^"|"$/g, ''), 'latin1').toString('base64');
      current[name] = value;
    }
  }
  for (const [k, v] of out) if (Object.keys(v).length === 0) out.delete(k);
  return out;
}

/** Sets xattrs: absolute path -> name -> base64 value, with one setfattr --restore. */
export async function writeXattrs(items: { abs: Buffer; x: Record<string, string> }[]): Promise<void> {
  if (items.length === 0) return;
  if (!xattrSupport()) throw new Error('the snapshot has extended attributes and setfattr is not installed (Debian package attr)');
  let dump = '';
  for (const { abs, x } of items) {
    dump += `# file: ${quote(abs)}\n`;
    for (const [name, value] of Object.entries(x)) dump += `${quote(Buffer.from(name, 'utf8'))}=0s${Buffer.from(value, 'base64').toString('base64')}\n`; // re-encoded: only base64 reaches the dump
    dump += '\n';
  }
  await run('setfattr', ['-h', '--restore=-'], dump);
}
