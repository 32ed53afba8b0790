// The referrers of a subject manifest (signatures, SBOMs, attestations): one small descriptor
// object per referrer, listed under the subject.
import type { ObjectStore, OpOptions } from '../storage/driver.js';
import type { Descriptor } from './manifest-format.js';
import { readJson, writeJson } from './objects.js';
import * as paths from './paths.js';

export class Referrers {
  constructor(private readonly store: ObjectStore) {}

  async add(repo: string, subject: string, referrer: Descriptor): Promise<void> {
    await writeJson(this.store, paths.referrerKey(repo, subject, referrer.digest), referrer);
  }

  async remove(repo: string, subject: string, referrer: string): Promise<void> {
    await this.store.delete(paths.referrerKey(repo, subject, referrer));
  }

  async list(repo: string, subject: string, artifactType?: string, options?: OpOptions): Promise<Descriptor[]> {
    const out: Descriptor[] = [];
    for await (const obj of this.store.list(paths.referrersPrefix(repo, subject), options)) {
      const d = await readJson<Descriptor>(this.store, obj.key, options);
      if (d && (artifactType === undefined || d.artifactType === artifactType)) out.push(d);
    }
    return out;
  }
}
