// The configuration: one typed, validated shape. Every leaf has a YAML path and an environment
// variable DRREG_<PATH IN UPPER CASE JOINED WITH _> (see env.ts). Defaults run the embedded
// registry: filesystem storage in ./data, listening on 0.0.0.0:5000.
import { z } from 'zod';
import { parsePasswordHash } from '../crypto/passwords.js';
import { parseDuration, parseSize } from './units.js';

const duration = z.union([z.string(), z.number()]).transform((value, ctx) => {
  const ms = typeof value === 'number' ? (value === 0 ? 0 : undefined) : parseDuration(value);
  if (ms === undefined) {
    ctx.addIssue({ code: 'custom', message: `expected a duration like "30s", "15m", "24h" or "7d", got ${JSON.stringify(value)}` });
    return z.NEVER;
  }
  return ms;
});

const size = z.union([z.string(), z.number()]).transform((value, ctx) => {
  const bytes = typeof value === 'number' ? value : parseSize(value);
  if (bytes === undefined || !Number.isSafeInteger(bytes) || bytes < 0) {
    ctx.addIssue({ code: 'custom', message: `expected a size in bytes or like "16MiB", got ${JSON.stringify(value)}` });
    return z.NEVER;
  }
  return bytes;
});

const listen = z.string().refine((v) => /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]*):\d{1,5}$/.test(v) && Number(v.split(':').pop()) <= 65535, {
  message: 'expected host:port, e.g. "0.0.0.0:5000"',
});

const filesystem = z
  .object({
    root: z.string().min(1).default('./data'),
    fsync: z.boolean().default(true),
    // A temp file not written to for this long is left by a write that died (kill -9): removed.
    tempMaxAge: duration.prefault('1h'),
  })
  .strict();

const s3 = z
  .object({
    endpoint: z.url({ protocol: /^https?$/ }).default('http://127.0.0.1:9000'),
    bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'expected an S3 bucket name').default('dr-registry'),
    region: z.string().min(1).default('us-east-1'),
    accessKey: z.string().default(''),
    secretKey: z.string().default(''),
    pathStyle: z.boolean().default(true),
    prefix: z.string().regex(/^([A-Za-z0-9._-]+\/)*$/, 'expected "" or a key prefix ending in "/"').default(''),
    partSize: size.refine((v) => v >= 5 * 1024 * 1024 && v <= 5 * 1024 ** 3, 'part size must be 5MiB..5GiB').prefault(16 * 1024 * 1024),
    concurrency: z.number().int().min(1).max(64).default(2),
    // Part buffers and read windows of all transfers at once (src/storage/budget.ts, docs/memory.md).
    memoryBudget: size.refine((v) => v >= 5 * 1024 * 1024, 'memory budget must be at least 5MiB').prefault(256 * 1024 * 1024),
    createBucket: z.boolean().default(true),
    // Off by default: a presigned URL sends the client to the store itself, which must then be
    // reachable by clients, and bypasses the registry's logs (and, later, its decryption).
    redirect: z.boolean().default(false),
  })
  .strict();

/** One retention policy: a repository glob and the rules that keep its recovery points. */
export const retentionPolicySchema = z
  .object({
    repositories: z.string().min(1),
    keepLast: z.number().int().min(0).optional(),
    keepWithin: duration.optional(),
    keepHourly: z.number().int().min(0).optional(),
    keepDaily: z.number().int().min(0).optional(),
    keepWeekly: z.number().int().min(0).optional(),
    keepMonthly: z.number().int().min(0).optional(),
    keepYearly: z.number().int().min(0).optional(),
    keepTags: z.array(z.string()).optional(),
    keepPulledWithin: duration.optional(),
  })
  .strict()
  .refine((p) => Object.keys(p).some((k) => k !== 'repositories'), {
    message: 'a policy needs at least one keep rule (without one it would drop every point but the current and pinned ones)',
  });

const userName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/, 'expected a user name of letters, digits and . _ @ - (no ":", which Basic credentials use)');

const authUser = z
  .object({
    name: userName.refine((n) => n !== 'anonymous', '"anonymous" is reserved for clients without credentials'),
    // Without one the user signs in only with a client certificate naming it (docs/tls.md).
    password: z.string().refine((h) => parsePasswordHash(h) !== undefined, 'expected a hash made by `dr-registry auth hash-password`, not a password').optional(),
    // Append-only: may push new recovery points but is never granted delete or the admin API,
    // whatever auth.access says (docs/immutability.md).
    appendOnly: z.boolean().default(false),
  })
  .strict();

const accessRule = z
  .object({
    repositories: z.string().min(1),
    // User names, "*" (any user who logged in) or "anonymous" (clients without credentials).
    users: z.array(z.string().min(1)).min(1),
    actions: z.array(z.enum(['pull', 'push', 'delete'])).min(1),
  })
  .strict();

const auth = z
  .object({
    // Token auth ("docker login") is on when a secret is set: every /v2 request then needs a token
    // from /auth/token. Every replica must have the same secret (it signs and checks tokens).
    secret: z.string().refine((t) => t === '' || t.length >= 32, 'must be empty (auth off) or at least 32 characters').default(''),
    // The token's audience, and the "service" clients are told to ask for. It goes into a quoted
    // header parameter, hence the plain characters.
    service: z.string().regex(/^[A-Za-z0-9._:/-]{1,200}$/, 'expected letters, digits and . _ : / - (a host name, say)').default('dr-registry'),
    // The token endpoint as clients reach it (behind a TLS proxy: https://host/auth/token); empty:
    // derived from each request's Host.
    realm: z.union([z.literal(''), z.url({ protocol: /^https?$/ }).refine((u) => !/["\\\s]/.test(u), 'must not contain quotes, backslashes or spaces')]).default(''),
    // Clients treat a token as valid for at least 60 s (the protocol's minimum); tokens cannot be
    // revoked, so their life is capped.
    tokenTtl: duration.prefault('5m').refine((ms) => ms >= 60_000 && ms <= 3_600_000, 'must be between 60s and 1h'),
    users: z.array(authUser).default([]),
    access: z.array(accessRule).default([]),
    // Users who may use the admin API (by password or a token with scope registry:admin:*).
    admins: z.array(z.string()).default([]),
  })
  .strict()
  .superRefine((a, ctx) => {
    const names = new Set<string>();
    a.users.forEach((u, i) => {
      if (names.has(u.name)) ctx.addIssue({ code: 'custom', path: ['users', i, 'name'], message: `user ${u.name} is listed twice` });
      names.add(u.name);
    });
    a.access.forEach((rule, i) =>
      rule.users.forEach((u, j) => {
        if (u !== '*' && u !== 'anonymous' && !names.has(u)) {
          ctx.addIssue({ code: 'custom', path: ['access', i, 'users', j], message: `no user ${u} in auth.users (or use "*" or "anonymous")` });
        }
      }),
    );
    a.admins.forEach((u, i) => {
      if (a.users.some((x) => x.name === u && x.appendOnly)) ctx.addIssue({ code: 'custom', path: ['admins', i], message: `user ${u} is append-only and cannot be an admin` });
      if (!names.has(u)) ctx.addIssue({ code: 'custom', path: ['admins', i], message: `no user ${u} in auth.users` });
    });
    if (!a.secret && (a.users.length > 0 || a.access.length > 0 || a.admins.length > 0)) {
      ctx.addIssue({ code: 'custom', path: ['secret'], message: 'must be set (32+ characters) for auth.users, auth.access and auth.admins to take effect' });
    }
  });

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
// Level names in any case ("INFO" too); anything else names the choices.
const logLevel = z.string().transform((value, ctx) => {
  const level = LOG_LEVELS.find((l) => l === value.trim().toLowerCase());
  if (!level) {
    ctx.addIssue({ code: 'custom', message: `expected a level name: ${LOG_LEVELS.join(', ')} (got ${JSON.stringify(value)})` });
    return z.NEVER;
  }
  return level;
});

// TLS in the registry itself (docs/tls.md). Files are PEM; they are re-read when they change.
const tlsSchema = z
  .object({
    certificate: z.string().default(''),
    key: z.string().default(''),
    // CA bundle that signs client certificates (mutual TLS); empty: none are asked for.
    clientCa: z.string().default(''),
    // With clientCa: "optional" asks for a certificate, "required" refuses connections without one.
    clientAuth: z.enum(['optional', 'required']).default('optional'),
    // How often the files are checked for a renewed certificate.
    reloadInterval: duration.prefault('10s').refine((ms) => ms >= 100, 'must be at least 100ms'),
  })
  .strict()
  .superRefine((t, ctx) => {
    if (!!t.certificate !== !!t.key) ctx.addIssue({ code: 'custom', path: [t.certificate ? 'key' : 'certificate'], message: 'tls.certificate and tls.key are set together' });
    if (t.clientCa && !t.certificate) ctx.addIssue({ code: 'custom', path: ['clientCa'], message: 'needs tls.certificate and tls.key (client certificates are a TLS feature)' });
  });

export const configSchema = z
  .object({
    listen: listen.default('0.0.0.0:5000'),
    log: z.object({ level: logLevel.default('info') }).strict().prefault({}),
    tls: tlsSchema.prefault({}),
    storage: z
      .object({
        driver: z.enum(['filesystem', 's3']).default('filesystem'),
        filesystem: filesystem.prefault({}),
        s3: s3.prefault({}),
        // Every store call has a deadline, so a hung store answers clients 503 within seconds
        // (src/storage/deadline.ts, docs/architecture.md).
        deadlines: z
          .object({
            // A metadata call (stat, delete, small put, opening a read, a listing page).
            call: duration.prefault('10s').refine((ms) => ms >= 100, 'must be at least 100ms'),
            // A stream making no progress while the other side waits (not a limit on its length).
            idle: duration.prefault('20s').refine((ms) => ms >= 100, 'must be at least 100ms'),
            // Store calls in flight at most; more fail at once with 503.
            maxInFlight: z.number().int().min(1).default(1024),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    encryption: z
      .object({
        // Path of the operator's keyring file; empty leaves the store unencrypted.
        keyring: z.string().default(''),
      })
      .strict()
      .prefault({}),
    retention: z
      .object({
        // The first policy whose glob matches a repository applies to it; none: everything kept.
        policies: z.array(retentionPolicySchema)
          .default([]),
        // A pruned recovery point stays restorable this long; then the collector may remove it.
        grace: duration.prefault('24h'),
        // Prune and then collect garbage this often in the background; 0 runs them only on demand.
        interval: duration.prefault(0),
        // Immutable recovery points: a point younger than this cannot be deleted, pruned, unpinned
        // or collected by anyone. Raising takes effect at once, lowering only after the lock in
        // force has run out (docs/immutability.md). 0 turns it off for points pushed from then on.
        lock: duration.prefault('7d').refine((ms) => ms <= 36_500 * 86_400_000, 'must be at most 36500d (100 years)'),
      })
      .strict()
      .prefault({}),
    gc: z
      .object({
        // Nothing written or linked more recently than this is collected (pushes in progress).
        grace: duration.prefault('1h'),
        // Wait between marking candidates (tombstones) and sweeping them; must exceed the time any
        // single request takes between checking a blob and writing its reference to it.
        sweepDelay: duration.prefault('1m'),
        // Collect manifests that no tag, recovery point, pin or other manifest ever referenced.
        deleteUntagged: z.boolean().default(false),
      })
      .strict()
      .prefault({}),
    uploads: z
      .object({
        maxAge: duration.prefault('24h'),
        cleanupInterval: duration.prefault('1h'),
      })
      .strict()
      .prefault({}),
    manifests: z
      .object({
        maxSize: size.prefault(4 * 1024 * 1024),
        // Descriptors (config, layers, child manifests) one manifest may name: bounds the work one
        // push causes. An image has at most a few hundred layers; an index one entry per platform
        // and attestation.
        maxReferences: z.number().int().min(1).max(100_000).default(1000),
      })
      .strict()
      .prefault({}),
    api: z.object({ deletes: z.boolean().default(true) }).strict().prefault({}),
    admin: z
      .object({
        // The admin API (/admin/v1) is off unless this token is set (or auth.admins names users);
        // requests carry it as "Authorization: Bearer <token>".
        token: z.string().refine((t) => t === '' || t.length >= 16, 'must be empty (admin API off) or at least 16 characters').default(''),
      })
      .strict()
      .prefault({}),
    auth: auth.prefault({}),
    // Stopping (SIGTERM): requests in flight may finish for this long, then are cut and logged.
    shutdown: z.object({ drain: duration.prefault('8s') }).strict().prefault({}),
    // Password guessing (docs/security.md): failures counted per client address and per (name,
    // address); past the allowance each failure doubles the wait (429 with Retry-After).
    loginLimits: z
      .object({
        perAddress: z.number().int().min(1).default(30),
        perNameAndAddress: z.number().int().min(1).default(5),
        baseDelay: duration.prefault('1s'),
        maxDelay: duration.prefault('15m'),
        forgetAfter: duration.prefault('1h'),
      })
      .strict()
      .refine((l) => l.maxDelay <= l.forgetAfter, { message: 'maxDelay must not exceed forgetAfter', path: ['maxDelay'] })
      .prefault({}),
    audit: z
      .object({
        // Audit records older than this are removed (whole segments; docs/audit.md).
        retention: duration.prefault('400d'),
        // Records are batched into one segment per process this often (pushes never wait on it).
        flushInterval: duration.prefault('2s').refine((ms) => ms >= 10 && ms <= 60_000, 'must be between 10ms and 60s'),
      })
      .strict()
      .prefault({}),
    dedup: z
      .object({
        // A HEAD of a blob another repository holds links it here when the caller may read that
        // repository (auth off: everyone may), so a second system never re-sends shared layers.
        // The answer reveals nothing the caller could not pull; docs/dedup.md.
        linkExistingOnHead: z.boolean().default(true),
      })
      .strict()
      .prefault({}),
    cache: z
      .object({
        tagTtl: duration.prefault('1s'),
        blobIndexEntries: z.number().int().min(0).default(10_000),
      })
      .strict()
      .prefault({}),
    metrics: z
      .object({
        // host:port of a second HTTP server with GET /metrics (Prometheus); empty: none. Kept off
        // the registry's port so it need not be exposed to clients.
        listen: z.union([z.literal(''), listen]).default(''),
      })
      .strict()
      .prefault({}),
    rpo: z
      .object({
        // The recovery point objective: how old a repository's newest recovery point may grow
        // before it counts as out of RPO (a system that stopped pushing). On by default, so a DR
        // plan does not die silently; 26h fits a daily push with slack. 0: not watched.
        maxAge: duration.prefault('26h'),
        // Per repository glob; the first match wins over maxAge (maxAge 0: not watched).
        rules: z.array(z.object({ repositories: z.string().min(1), maxAge: duration }).strict()).default([]),
        // How often each process re-reads every repository's newest push (pushes to this process
        // count at once; another replica's within this interval).
        refreshInterval: duration.prefault('1m').refine((ms) => ms >= 100, 'must be at least 100ms'),
      })
      .strict()
      .prefault({}),
    verify: z
      .object({
        // Read and check every blob of every recovery point this often (dr-registry verify);
        // 0: only on demand.
        interval: duration.prefault(0),
      })
      .strict()
      .prefault({}),
    http: z
      .object({
        idleTimeout: duration.prefault('5m'),
        headersTimeout: duration.prefault('60s'),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .superRefine((config, ctx) => {
    // A live write pauses at most http.idleTimeout; its temp file must outlive that pause.
    if (config.storage.filesystem.tempMaxAge <= config.http.idleTimeout) {
      ctx.addIssue({ code: 'custom', path: ['storage', 'filesystem', 'tempMaxAge'], message: 'must be longer than http.idleTimeout' });
    }
    // A presigned URL hands the client the stored bytes: with encryption on, that is ciphertext.
    if (config.storage.s3.redirect && config.encryption.keyring) {
      ctx.addIssue({ code: 'custom', path: ['storage', 's3', 'redirect'], message: 'cannot be true while encryption.keyring is set' });
    }
  });

export type Config = z.output<typeof configSchema>;
