// The Docker Engine API over DOCKER_HOST (unix:///path/docker.sock, or tcp://host:port as plain
// http), with node:http: no dependency for the few calls volume and system commands make.
import http from 'node:http';

export class DockerError extends Error {
  override readonly name = 'DockerError';
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

export interface VolumeInfo {
  Name: string;
  Mountpoint: string;
  Driver: string;
  Labels?: Record<string, string> | null;
}

export interface ContainerMount {
  Type: string;
  Name?: string;
  Source: string;
  Destination: string;
  RW: boolean;
}

export interface ContainerInfo {
  Id: string;
  Name: string;
  Image: string;
  Config: { Image: string; Cmd?: string[] | null; Entrypoint?: string[] | null; Env?: string[] | null; WorkingDir?: string; Labels?: Record<string, string> | null; User?: string };
  Mounts: ContainerMount[];
  State: { Running: boolean; Paused: boolean };
}

export class DockerEngine {
  private readonly socketPath?: string;
  private readonly host?: string;
  private readonly port?: number;

  constructor(dockerHost = process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock') {
    if (dockerHost.startsWith('unix://')) this.socketPath = dockerHost.slice('unix://'.length);
    else if (dockerHost.startsWith('tcp://') || dockerHost.startsWith('http://')) {
      const url = new URL(dockerHost.replace(/^tcp:/, 'http:'));
      this.host = url.hostname;
      this.port = Number(url.port || 2375);
    } else throw new DockerError(`DOCKER_HOST ${dockerHost}: only unix:// and tcp:// are supported`);
  }

  /** One API call; the JSON answer (or the text of a streamed one). */
  request<T = unknown>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: T }> {
    return new Promise((resolve, reject) => {
      const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const req = http.request(
        {
          socketPath: this.socketPath,
          host: this.host ?? 'localhost',
          port: this.port,
          method,
          path: `/v1.41${path}`,
          headers: { ...(data ? { 'content-type': 'application/json', 'content-length': String(data.length) } : {}), ...headers },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown = text;
            if ((res.headers['content-type'] ?? '').includes('application/json')) {
              try {
                parsed = text ? JSON.parse(text) : undefined;
              } catch {
                /* a stream of JSON objects: keep the text */
              }
            }
            resolve({ status: res.statusCode ?? 0, body: parsed as T });
          });
          res.on('error', reject);
        },
      );
      req.on('error', (err) => reject(new DockerError(`cannot reach the docker daemon (${this.socketPath ?? `${this.host}:${this.port}`}): ${err.message}`)));
      req.end(data);
    });
  }

  private async ok<T>(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<T> {
    const res = await this.request<T>(method, path, body, headers);
    if (res.status >= 300) {
      const message = (res.body as { message?: string } | undefined)?.message ?? String(res.body);
      throw new DockerError(`docker ${method} ${path}: ${res.status} ${message}`, res.status);
    }
    return res.body;
  }

  async volume(name: string): Promise<VolumeInfo | undefined> {
    const res = await this.request<VolumeInfo>('GET', `/volumes/${encodeURIComponent(name)}`);
    if (res.status === 404) return undefined;
    if (res.status >= 300) throw new DockerError(`docker volume ${name}: ${res.status}`, res.status);
    return res.body;
  }

  createVolume(name: string, labels: Record<string, string> = {}): Promise<VolumeInfo> {
    return this.ok('POST', '/volumes/create', { Name: name, Labels: labels });
  }

  container(name: string): Promise<ContainerInfo> {
    return this.ok('GET', `/containers/${encodeURIComponent(name)}/json`);
  }

  /** Names of containers with a label (e.g. com.docker.compose.project=NAME), running or not. */
  async containersWithLabel(label: string): Promise<string[]> {
    const filters = encodeURIComponent(JSON.stringify({ label: [label] }));
    const list = await this.ok<{ Names: string[] }[]>('GET', `/containers/json?all=1&filters=${filters}`);
    return list.map((c) => c.Names[0]!.replace(/^\//, '')).sort();
  }

  pause(name: string): Promise<unknown> {
    return this.ok('POST', `/containers/${encodeURIComponent(name)}/pause`);
  }

  unpause(name: string): Promise<unknown> {
    return this.ok('POST', `/containers/${encodeURIComponent(name)}/unpause`);
  }

  /** docker commit: the container's filesystem (volumes excluded) as an image `repo:tag`. */
  commit(container: string, repo: string, tag: string): Promise<{ Id: string }> {
    return this.ok('POST', `/commit?container=${encodeURIComponent(container)}&repo=${encodeURIComponent(repo)}&tag=${encodeURIComponent(tag)}&pause=true`);
  }

  private static authHeader(creds?: { username: string; password: string }, serveraddress = ''): Record<string, string> {
    const auth = creds ? { username: creds.username, password: creds.password, serveraddress } : {};
    return { 'x-registry-auth': Buffer.from(JSON.stringify(auth)).toString('base64url') };
  }

  /** Pushes `image:tag` (the daemon does the work); the pushed manifest digest. */
  async push(image: string, tag: string, creds?: { username: string; password: string }): Promise<string> {
    const text = await this.ok<string>('POST', `/images/${image}/push?tag=${encodeURIComponent(tag)}`, undefined, DockerEngine.authHeader(creds, image.split('/')[0]));
    return streamResult(text, /digest: (sha256:[0-9a-f]{64})/);
  }

  async pull(image: string, tag: string, creds?: { username: string; password: string }): Promise<void> {
    const text = await this.ok<string>('POST', `/images/create?fromImage=${encodeURIComponent(image)}&tag=${encodeURIComponent(tag)}`, undefined, DockerEngine.authHeader(creds, image.split('/')[0]));
    streamResult(text);
  }

  createContainer(name: string, config: Record<string, unknown>): Promise<{ Id: string }> {
    return this.ok('POST', `/containers/create?name=${encodeURIComponent(name)}`, config);
  }

  async removeImage(ref: string): Promise<void> {
    await this.request('DELETE', `/images/${ref}?force=1`);
  }
}

/** The daemon streams JSON lines; an error line means failure. Returns the first match of `want`. */
function streamResult(text: string | object, want?: RegExp): string {
  const raw = typeof text === 'string' ? text : JSON.stringify(text);
  let found = '';
  for (const line of raw.split('\n')) {
    if (!line.trim()) continue;
    let msg: { error?: string; status?: string; aux?: { Digest?: string } };
    try {
      msg = JSON.parse(line);
    } catch {
      continue;
    }
    if (msg.error) throw new DockerError(msg.error);
    if (msg.aux?.Digest) found ||= msg.aux.Digest;
    const m = want && msg.status ? want.exec(msg.status) : null;
    if (m) found ||= m[1]!;
  }
  return found;
}
