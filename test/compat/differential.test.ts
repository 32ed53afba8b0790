// Differential test: the same raw requests, good and bad, go to dr-registry and to CNCF
// Distribution 2.8 (the reference implementation). Status codes, error codes and the presence of
// key headers must agree, except for the differences listed in KNOWN_DIFFERENCES, each explained
// in docs/compatibility.md. A listed difference that disappears fails the test too, so the
// document stays true.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { startDistribution } from '../services/distribution.js';
import { cases, type Outcome, type Target } from './cases.js';

/** Case name -> where dr-registry deliberately differs (see docs/compatibility.md). */
const KNOWN_DIFFERENCES: Record<string, string> = {
  'monolithic upload, right digest': 'Distribution 2.8 ignores ?digest= on POST; the spec allows a single-POST upload (201)',
  'monolithic upload, wrong digest': 'follows from the row above: we verify the digest and refuse (DIGEST_INVALID)',
  'GET blob range past the end': 'Distribution drops the connection; the spec and RFC 9110 say 416 with Content-Range',
  'PATCH out-of-order chunk': 'Distribution 2.8 accepts it and corrupts the upload; the spec says 416',
  'upload gone after a failed finish': 'Distribution says BLOB_UPLOAD_INVALID; the spec code for an unknown upload is BLOB_UPLOAD_UNKNOWN',
  'PUT to an unknown upload': 'same: BLOB_UPLOAD_UNKNOWN, as the spec says',
  'tags list, first page': 'Distribution 2.8 ignores n on tags/list; the spec paginates with a Link header',
  'DELETE manifest by tag': 'Distribution 2.8 only deletes by digest; OCI 1.1 allows deleting a tag',
  'upper-case repository name': 'Distribution answers a bare 404; we say NAME_INVALID (400), the spec code',
  'referrers of a manifest': 'Distribution 2.8 predates the OCI 1.1 referrers API',
  'tags list with a malformed n': 'Distribution ignores a malformed n; we refuse it with PAGINATION_NUMBER_INVALID',
  'DELETE manifest by digest': 'tag v1 still points at it: DENIED until the tag is deleted (docs/immutability.md); Distribution deletes it and untags v1',
  'GET deleted manifest': 'follows from the row above: the manifest was not deleted',
  'GET tag of a deleted manifest': 'same: v1 still points at it',
  'manifest over 4 MiB': 'the spec says 413 for a manifest over the limit; Distribution answers 400 MANIFEST_INVALID',
};

const summary = (o: Outcome, headers: string[] = []) => ({
  status: o.status,
  codes: o.codes,
  headers: Object.fromEntries(headers.map((h) => [h, o.headers[h] !== undefined && o.headers[h] !== null])),
});

describe('differential: dr-registry vs CNCF Distribution 2.8', () => {
  let ours: TestRegistry;
  let reference: Awaited<ReturnType<typeof startDistribution>>;
  const results: Array<{ name: string; ours: ReturnType<typeof summary>; reference: ReturnType<typeof summary> }> = [];

  beforeAll(async () => {
    [ours, reference] = await Promise.all([startTestRegistry(), startDistribution()]);
    const targets: [Target, Target] = [
      { url: ours.url, state: {} },
      { url: reference.url, state: {} },
    ];
    // A transport failure becomes the outcome, so one bad case cannot hide the others.
    const attempt = (c: (typeof cases)[number], t: Target): Promise<Outcome> =>
      c.run(t).catch((err: Error) => ({ status: -1, codes: [`transport error: ${err.message}`], headers: {} }));
    for (const c of cases) {
      const [a, b] = [await attempt(c, targets[0]), await attempt(c, targets[1])];
      results.push({ name: c.name, ours: summary(a, c.headers), reference: summary(b, c.headers) });
    }
  }, 120_000);

  afterAll(async () => {
    if (process.env.DRREG_DIFF_DUMP) {
      const { writeFileSync } = await import('node:fs');
      writeFileSync(process.env.DRREG_DIFF_DUMP, JSON.stringify(results, null, 1));
    }
    await ours?.stop();
    await reference?.stop();
  });

  it.each(cases.map((c) => c.name))('%s', (name) => {
    const r = results.find((x) => x.name === name)!;
    if (KNOWN_DIFFERENCES[name]) {
      expect(r.ours, `listed as a known difference: ${KNOWN_DIFFERENCES[name]}`).not.toEqual(r.reference);
    } else {
      expect(r.ours).toEqual(r.reference);
    }
  });
});
