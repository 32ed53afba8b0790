// Which repositories exist: a marker object per repository, listed for the catalog.
import { LRUCache } from 'lru-cache';
import type { ObjectStore } from '../storage/driver.js';
import { writeJson } from './objects.js';
import * as paths from './paths.js';

export class Repositories {
  // Markers are only ever added by pushes, so remembering "written" avoids a PUT per push.
  private readonly known = new LRUCache<string, true>({ max: 10_000 });

  constructor(private readonly store: ObjectStore) {}

  async ensure(repo: string): Promise<void> {
    if (this.known.has(repo)) return;
    if (!(await this.exists(repo))) {
      await writeJson(this.store, paths.catalogKey(repo), { createdAt: new Date().toISOString() });
    }
    this.known.set(repo, true);
  }

  async exists(repo: string): Promise<boolean> {
    return this.known.has(repo) || (await this.store.stat(paths.catalogKey(repo))) !== undefined;
  }

  /**
   * Records a repository that holds links but no manifest yet (dedup.linkExistingOnHead), so the
   * collector sees its links while the catalog does not list it.
   */
  async markPending(repo: string): Promise<void> {
    if (!(await this.exists(repo))) await writeJson(this.store, paths.pendingRepoKey(repo), { createdAt: new Date().toISOString() });
  }

  /** Every repository that may hold links, pending ones included: what the collector walks. */
  async listWithPending(): Promise<string[]> {
    const names = new Set<string>();
    for await (const obj of this.store.list(paths.CATALOG_PREFIX)) {
      const name = paths.repoFromAnyCatalogKey(obj.key);
      if (name) names.add(name);
    }
    return [...names].sort();
  }

  /** Every repository name in lexical order. */
  async list(): Promise<string[]> {
    const names: string[] = [];
    for await (const obj of this.store.list(paths.CATALOG_PREFIX)) {
      const name = paths.repoFromCatalogKey(obj.key);
      if (name) names.push(name);
    }
    return names.sort();
  }
}

/** One page of a sorted list, as `n`/`last` pagination defines it. */
export function paginate(sorted: string[], n: number | undefined, last: string | undefined) {
  const start = last === undefined ? 0 : sorted.findIndex((x) => x > last);
  const from = start < 0 ? sorted.length : start;
  const page = n === undefined ? sorted.slice(from) : sorted.slice(from, from + n);
  const more = from + page.length < sorted.length && page.length > 0;
  return { page, next: more ? page[page.length - 1] : undefined };
}
