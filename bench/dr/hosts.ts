// A "host" of the study: a machine with a client and its own cache, pushing images of one system or
// pulling them back at the recovery site. skopeo pushes straight from the OCI layout; docker first
// has the image loaded into its daemon (not timed), then `docker push`, as an operator would.
import { mkdtemp } from 'node:fs/promises';
import path from 'node:path';
import { dockerLoadFromLayout, dockerPull, dockerPush, freshSkopeo, skopeoCopyToRegistry } from '../../test/e2e/clients.js';
import { ensureDockerd } from '../../test/services/dockerd.js';

export const CLIENTS = ['skopeo', 'docker'] as const;
export type ClientKind = (typeof CLIENTS)[number];

export interface Host {
  /** Makes `layoutRef` of the layout pushable as hostPort/repo:tag (docker: loads it; not timed). */
  prepare(layoutRef: string, hostPort: string, repo: string, tag: string): Promise<void>;
  push(layoutRef: string, hostPort: string, repo: string, tag: string): Promise<void>;
  pull(hostPort: string, repo: string, tag: string): Promise<void>;
  close(): Promise<void>;
}

/** A fresh host: nothing cached, so it knows nothing of what other hosts pushed. */
export async function freshHost(kind: ClientKind, layout: string, work: string): Promise<Host> {
  const skopeo = await freshSkopeo(work);
  if (kind === 'skopeo') {
    return {
      async prepare() {},
      async push(layoutRef, hostPort, repo, tag) {
        await skopeoCopyToRegistry(skopeo, layout, layoutRef, hostPort, repo, tag);
      },
      async pull(hostPort, repo, tag) {
        const out = await mkdtemp(path.join(skopeo.home, 'pulled-'));
        await skopeo(['copy', '--src-tls-verify=false', `docker://${hostPort}/${repo}:${tag}`, `oci:${out}:${tag}`]);
      },
      async close() {},
    };
  }
  const daemon = await ensureDockerd();
  return {
    async prepare(layoutRef, hostPort, repo, tag) {
      await dockerLoadFromLayout(skopeo, daemon.host, layout, layoutRef, `${hostPort}/${repo}:${tag}`);
    },
    async push(_layoutRef, hostPort, repo, tag) {
      await dockerPush(daemon.host, `${hostPort}/${repo}:${tag}`);
    },
    async pull(hostPort, repo, tag) {
      await dockerPull(daemon.host, `${hostPort}/${repo}:${tag}`);
    },
    close: () => daemon.stop(),
  };
}
