import { describe, expect, it } from 'vitest';
import { parseRangeHeader } from '../../src/http/oci/blobs.js';
import { parseDigest } from '../../src/registry/digest.js';
import { isValidName, parseReference } from '../../src/registry/names.js';
import * as paths from '../../src/registry/paths.js';
import { paginate } from '../../src/registry/repositories.js';

describe('paginate', () => {
  const all = ['a', 'b', 'c', 'd', 'e'];
  it('pages with n and last, and says where the next page starts', () => {
    expect(paginate(all, 2, undefined)).toEqual({ page: ['a', 'b'], next: 'b' });
    expect(paginate(all, 2, 'b')).toEqual({ page: ['c', 'd'], next: 'd' });
    expect(paginate(all, 2, 'd')).toEqual({ page: ['e'], next: undefined });
    expect(paginate(all, undefined, 'bb')).toEqual({ page: ['c', 'd', 'e'], next: undefined });
    expect(paginate(all, 0, undefined)).toEqual({ page: [], next: undefined });
    expect(paginate(all, 3, 'z')).toEqual({ page: [], next: undefined });
  });
});

describe('parseRangeHeader', () => {
  it.each([
    ['', 10, undefined],
    ['bytes=0-4', 10, { start: 0, end: 4 }],
    ['bytes=5-', 10, { start: 5, end: 9 }],
    ['bytes=-3', 10, { start: 7, end: 9 }],
    ['bytes=8-100', 10, { start: 8, end: 9 }],
    ['bytes=10-', 10, 'unsatisfiable'],
    ['bytes=5-2', 10, 'unsatisfiable'],
    ['bytes=-0', 10, 'unsatisfiable'],
    ['bytes=x-y', 10, 'unsatisfiable'],
    ['bytes=0-1,4-5', 10, undefined],
    ['items=0-1', 10, undefined],
  ])('%j of %d bytes -> %j', (header, size, expected) => {
    expect(parseRangeHeader(header, size)).toEqual(expected);
  });
});

describe('names, references and digests', () => {
  it.each(['library/ubuntu', 'a', 'a.b_c__d-e---f/g', 'x/y/z'])('accepts name %s', (n) => expect(isValidName(n)).toBe(true));
  it.each(['', 'A', '_a', 'a/', '/a', 'a//b', 'a/../b', '..', 'a/./b', 'a%2fb', 'a:b', 'a'.repeat(256)])('refuses name %j', (n) =>
    expect(isValidName(n)).toBe(false),
  );
  it('tells tags from digests and refuses the rest', () => {
    expect(parseReference('v1.0')).toEqual({ kind: 'tag', tag: 'v1.0' });
    expect(parseReference(`sha256:${'a'.repeat(64)}`)).toEqual({ kind: 'digest', digest: `sha256:${'a'.repeat(64)}` });
    expect(parseReference('.hidden')).toBeUndefined();
    expect(parseReference('x'.repeat(129))).toBeUndefined();
    expect(parseReference('sha256:abc')).toBeUndefined();
  });
  it.each(['sha256:' + 'A'.repeat(64), 'sha256:' + 'a'.repeat(63), 'md5:' + 'a'.repeat(32), 'sha512:' + 'a'.repeat(64), 'sha256:../../etc'])(
    'refuses digest %s',
    (d) => expect(() => parseDigest(d)).toThrow(/invalid/),
  );
});

describe('storage key layout', () => {
  const d = `sha256:${'ab'.repeat(32)}`;
  it('round-trips the keys that listings parse back', () => {
    expect(paths.digestFromBlobIndexKey(paths.blobIndexKey(d))).toBe(d);
    expect(paths.repoFromCatalogKey(paths.catalogKey('a/b'))).toBe('a/b');
    expect(paths.digestFromLinkKey(paths.manifestLinkKey('a/b', d))).toBe(d);
    expect(paths.uploadIdFromStateKey(paths.uploadStateKey('u-1'))).toBe('u-1');
  });
  it('orders tag history by push time under a byte-order listing', () => {
    const early = paths.tagHistoryKey('r', 'latest', 999, d);
    const late = paths.tagHistoryKey('r', 'latest', 1_000_000_000_000, d);
    expect(early < late).toBe(true);
  });
});
