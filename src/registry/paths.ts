// The one module that builds storage keys. Nobody else concatenates keys.
//
//   blobs/<alg>/<hex[0:2]>/<hex>/index                 blob index: {size, parts:[{key,size}], createdAt}
//   data/<upload-id>/<n>-<nonce>                       bytes of one upload part, written once, never moved
//   uploads/<upload-id>/state                          upload session: repo, offset, parts, startedAt
//   catalog/<name>/_repo                               marks that repository <name> exists
//   catalog/<name>/_pending                            links only (a HEAD linked a blob): not in the catalog, seen by GC
//   repositories/<name>/_layers/<alg>/<hex>            repository may read blob <alg>:<hex>
//   repositories/<name>/_manifests/<alg>/<hex>         repository holds manifest (link: mediaType, ...)
//   repositories/<name>/_tags/current/<tag>            {digest, pushedAt}
//   repositories/<name>/_tags/history/<tag>/<ms>-<alg>-<hex>   every digest the tag pointed to
//   repositories/<name>/_tags/pruned/<tag>/<ms>-<alg>-<hex>    a pruned point: {prunedAt}, restorable in the grace
//   repositories/<name>/_referrers/<alg>/<subject-hex>/<alg>-<hex>   descriptor of a referrer
//   repositories/<name>/_pins/<alg>/<hex>              recovery point pinned (never pruned)
//   repositories/<name>/_pulls/<alg>/<hex>             {lastPulledAt}, written at most hourly
//   repositories/<name>/_deleted/<alg>/<hex>           manifest deleted through the API (not relinked by GC)
//   repositories/<name>/_unlinked/<alg>/<hex>          layer link the collector removed (a use within gc.grace relinks)
//   holders/<alg>/<hex>/<name with / as ~>             repository <name> linked blob <alg>:<hex> (reverse index, docs/dedup.md)
//   gc/tombstones/<alg>/<hex>                          blob the collector means to delete; any use removes it
//   gc/sweeping/<alg>/<hex>                            index of a blob being swept (put back if a run dies)
//   gc/lease                                           {owner, expiresAt}: one collector at a time
//   gc/last-report                                     what the last collection did
//   verify/last-report                                 what the last scrub (dr-registry verify) found
//   settings/retention-policies                        policies set through the admin API (override config)
//   settings/lock/<ms>-<nonce>                         one value of retention.lock and when it was set (append-only)
//   audit/<replica>/<segment>-<last-ms>                a batch of audit records of one process (hash-chained)
//   health/probe                                       "ok": what GET /healthz stats
//
// Repository path components match [a-z0-9]+(sep[a-z0-9]+)*, so they never start with "_": the
// underscore-prefixed directories cannot collide with a nested repository name (same trick as
// CNCF Distribution). Every key ends in a leaf that cannot also be a directory, so the filesystem
// driver never meets a file where it needs a folder.
import { parseDigest } from './digest.js';

export const BLOBS_PREFIX = 'blobs/';
export const DATA_PREFIX = 'data/';
export const UPLOADS_PREFIX = 'uploads/';
export const CATALOG_PREFIX = 'catalog/';
export const REPOSITORIES_PREFIX = 'repositories/';
export const TOMBSTONES_PREFIX = 'gc/tombstones/';
export const HOLDERS_PREFIX = 'holders/';
export const SWEEP_INTENTS_PREFIX = 'gc/sweeping/';
export const GC_LEASE_KEY = 'gc/lease';
export const GC_REPORT_KEY = 'gc/last-report';
export const VERIFY_REPORT_KEY = 'verify/last-report';
export const RETENTION_POLICIES_KEY = 'settings/retention-policies';
export const HEALTH_PROBE_KEY = 'health/probe';
export const LOCK_HISTORY_PREFIX = 'settings/lock/';
export const AUDIT_PREFIX = 'audit/';

/** A new entry of the lock history: never overwritten (the nonce), ordered by time. */
export function lockEntryKey(setAtMs: number, nonce: string): string {
  return `${LOCK_HISTORY_PREFIX}${String(setAtMs).padStart(15, '0')}-${nonce}`;
}

/** One audit segment: the replica's chain, its number in that chain, the time of its last record. */
export function auditSegmentKey(replica: string, segment: number, lastAtMs: number): string {
  return `${AUDIT_PREFIX}${replica}/${String(segment).padStart(10, '0')}-${String(lastAtMs).padStart(15, '0')}`;
}

export function parseAuditSegmentKey(key: string): { replica: string; segment: number; lastAtMs: number } | undefined {
  const m = /^audit\/([A-Za-z0-9-]+)\/(\d{10})-(\d{15})$/.exec(key);
  return m ? { replica: m[1]!, segment: Number(m[2]), lastAtMs: Number(m[3]) } : undefined;
}

function split(digest: string): { algorithm: string; hex: string } {
  return parseDigest(digest);
}

export function blobIndexKey(digest: string): string {
  const { algorithm, hex } = split(digest);
  return `${BLOBS_PREFIX}${algorithm}/${hex.slice(0, 2)}/${hex}/index`;
}

/** Inverse of blobIndexKey for listings; undefined for keys that are not blob indexes. */
export function digestFromBlobIndexKey(key: string): string | undefined {
  const m = /^blobs\/(sha256|sha512)\/[0-9a-f]{2}\/([0-9a-f]+)\/index$/.exec(key);
  return m ? `${m[1]}:${m[2]}` : undefined;
}

export function uploadDataPrefix(uploadId: string): string {
  return `${DATA_PREFIX}${uploadId}/`;
}

/** A part key carries a nonce so two writers racing on one upload never overwrite each other. */
export function uploadPartKey(uploadId: string, partNumber: number, nonce: string): string {
  return `${uploadDataPrefix(uploadId)}${String(partNumber).padStart(6, '0')}-${nonce}`;
}

export function uploadStateKey(uploadId: string): string {
  return `${UPLOADS_PREFIX}${uploadId}/state`;
}

export function uploadIdFromStateKey(key: string): string | undefined {
  const m = /^uploads\/([^/]+)\/state$/.exec(key);
  return m?.[1];
}

export function catalogKey(repo: string): string {
  return `${CATALOG_PREFIX}${repo}/_repo`;
}

export function pendingRepoKey(repo: string): string {
  return `${CATALOG_PREFIX}${repo}/_pending`;
}

/** The repository of a catalog key or of a pending marker. */
export function repoFromAnyCatalogKey(key: string): string | undefined {
  if (key.endsWith('/_pending')) return key.slice(CATALOG_PREFIX.length, -'/_pending'.length);
  return repoFromCatalogKey(key);
}

export function repoFromCatalogKey(key: string): string | undefined {
  if (!key.startsWith(CATALOG_PREFIX) || !key.endsWith('/_repo')) return undefined;
  return key.slice(CATALOG_PREFIX.length, -'/_repo'.length);
}

export function repositoryPrefix(repo: string): string {
  return `${REPOSITORIES_PREFIX}${repo}/`;
}

export function layerLinksPrefix(repo: string): string {
  return `${repositoryPrefix(repo)}_layers/`;
}

export function layerLinkKey(repo: string, digest: string): string {
  const { algorithm, hex } = split(digest);
  return `${layerLinksPrefix(repo)}${algorithm}/${hex}`;
}

export function manifestLinksPrefix(repo: string): string {
  return `${repositoryPrefix(repo)}_manifests/`;
}

export function manifestLinkKey(repo: string, digest: string): string {
  const { algorithm, hex } = split(digest);
  return `${manifestLinksPrefix(repo)}${algorithm}/${hex}`;
}

export function digestFromLinkKey(key: string): string | undefined {
  const m = /\/(sha256|sha512)\/([0-9a-f]+)$/.exec(key);
  return m ? `${m[1]}:${m[2]}` : undefined;
}

export function currentTagsPrefix(repo: string): string {
  return `${repositoryPrefix(repo)}_tags/current/`;
}

export function currentTagKey(repo: string, tag: string): string {
  return `${currentTagsPrefix(repo)}${tag}`;
}

export function tagHistoryPrefix(repo: string, tag: string): string {
  return `${tagHistoryRoot(repo)}${tag}/`;
}

/** Zero-padded milliseconds keep history keys in push order under a byte-order listing. */
export function tagHistoryKey(repo: string, tag: string, pushedAtMs: number, digest: string): string {
  const { algorithm, hex } = split(digest);
  return `${tagHistoryPrefix(repo, tag)}${String(pushedAtMs).padStart(15, '0')}-${algorithm}-${hex}`;
}

export function tagHistoryRoot(repo: string): string {
  return `${repositoryPrefix(repo)}_tags/history/`;
}

/** Parses a history key back into its tag, push time and digest. */
export function parseTagHistoryKey(repo: string, key: string): { tag: string; pushedAtMs: number; digest: string } | undefined {
  return parsePointKey(key.slice(tagHistoryRoot(repo).length));
}

export function prunedRoot(repo: string): string {
  return `${repositoryPrefix(repo)}_tags/pruned/`;
}

/** Where a pruned history entry goes: same name, so it can be moved back. */
export function prunedKey(repo: string, tag: string, pushedAtMs: number, digest: string): string {
  return tagHistoryKey(repo, tag, pushedAtMs, digest).replace(tagHistoryRoot(repo), prunedRoot(repo));
}

export function parsePrunedKey(repo: string, key: string): { tag: string; pushedAtMs: number; digest: string } | undefined {
  return parsePointKey(key.slice(prunedRoot(repo).length));
}

function parsePointKey(rest: string): { tag: string; pushedAtMs: number; digest: string } | undefined {
  const m = /^([^/]+)\/(\d{15})-(sha256|sha512)-([0-9a-f]+)$/.exec(rest);
  return m ? { tag: m[1]!, pushedAtMs: Number(m[2]), digest: `${m[3]}:${m[4]}` } : undefined;
}

export function sweepIntentKey(digest: string): string {
  const { algorithm, hex } = split(digest);
  return `${SWEEP_INTENTS_PREFIX}${algorithm}/${hex}`;
}

export function tombstoneKey(digest: string): string {
  const { algorithm, hex } = split(digest);
  return `${TOMBSTONES_PREFIX}${algorithm}/${hex}`;
}


export function pinKey(repo: string, digest: string): string {
  const { algorithm, hex } = split(digest);
  return `${repositoryPrefix(repo)}_pins/${algorithm}/${hex}`;
}

export function pinsPrefix(repo: string): string {
  return `${repositoryPrefix(repo)}_pins/`;
}

export function pullKey(repo: string, digest: string): string {
  const { algorithm, hex } = split(digest);
  return `${repositoryPrefix(repo)}_pulls/${algorithm}/${hex}`;
}

export function unlinkedLayerKey(repo: string, digest: string): string {
  const { algorithm, hex } = split(digest);
  return `${unlinkedLayersPrefix(repo)}${algorithm}/${hex}`;
}

export function unlinkedLayersPrefix(repo: string): string {
  return `${repositoryPrefix(repo)}_unlinked/`;
}

export function deletedManifestKey(repo: string, digest: string): string {
  const { algorithm, hex } = split(digest);
  return `${deletedManifestsPrefix(repo)}${algorithm}/${hex}`;
}

export function deletedManifestsPrefix(repo: string): string {
  return `${repositoryPrefix(repo)}_deleted/`;
}

export function referrersPrefix(repo: string, subject: string): string {
  const { algorithm, hex } = split(subject);
  return `${repositoryPrefix(repo)}_referrers/${algorithm}/${hex}/`;
}

export function referrerKey(repo: string, subject: string, referrer: string): string {
  const { algorithm, hex } = split(referrer);
  return `${referrersPrefix(repo, subject)}${algorithm}-${hex}`;
}

/** Every repository that linked a blob, one key each: the existence check of docs/dedup.md. */
export function holdersPrefix(digest: string): string {
  const { algorithm, hex } = split(digest);
  return `${HOLDERS_PREFIX}${algorithm}/${hex}/`;
}

/**
 * One flat key per holder ("/" in the name as "~", which names never contain): listing a blob's
 * holders is one directory read on the filesystem, however deep the repository names.
 */
export function holderKey(digest: string, repo: string): string {
  return `${holdersPrefix(digest)}${repo.replaceAll('/', '~')}`;
}

/** Inverse of holderKey for a listing of holdersPrefix(digest). */
export function repoFromHolderKey(digest: string, key: string): string | undefined {
  const prefix = holdersPrefix(digest);
  const rest = key.slice(prefix.length);
  if (!key.startsWith(prefix) || rest === '' || rest.includes('/')) return undefined;
  return rest.replaceAll('~', '/');
}
