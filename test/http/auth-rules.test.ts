// The pure parts of token auth: scopes as clients send them, and rights from access rules.
import { describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/crypto/passwords.js';
import { Rights } from '../../src/http/auth/rights.js';
import { Users } from '../../src/http/auth/users.js';
import { formatScope, parseScopes } from '../../src/http/auth/scope.js';

describe('scopes', () => {
  it('reads the forms docker, containerd and skopeo send', () => {
    expect(parseScopes('repository:moodle/web:pull,push')).toEqual([{ type: 'repository', name: 'moodle/web', actions: ['pull', 'push'] }]);
    expect(parseScopes('registry:catalog:*')).toEqual([{ type: 'registry', name: 'catalog', actions: ['*'] }]);
    // Several in one parameter, space-separated (OAuth2 POST), and a resource class on the type.
    expect(parseScopes('repository:a:pull repository(plugin):b:push')).toEqual([
      { type: 'repository', name: 'a', actions: ['pull'] },
      { type: 'repository', name: 'b', actions: ['push'] },
    ]);
    // A name with a colon (a registry host with a port) keeps it: actions follow the last colon.
    expect(parseScopes('repository:host:5000/app:pull')).toEqual([{ type: 'repository', name: 'host:5000/app', actions: ['pull'] }]);
    expect(parseScopes('repository:a:')).toEqual([{ type: 'repository', name: 'a', actions: [] }]);
  });

  it('skips what is not type:name:actions', () => {
    expect(parseScopes('')).toEqual([]);
    expect(parseScopes('pull')).toEqual([]);
    expect(parseScopes('repository:onlyname')).toEqual([]);
    expect(parseScopes(':a:pull')).toEqual([]);
  });

  it('formats a scope back as the challenge writes it', () => {
    expect(formatScope({ type: 'repository', name: 'a/b', actions: ['pull', 'push'] })).toBe('repository:a/b:pull,push');
  });
});

describe('rights', () => {
  const rights = new Rights([
    { repositories: 'moodle/*', users: ['alice'], actions: ['pull', 'push'] },
    { repositories: 'moodle/web', users: ['alice'], actions: ['delete'] },
    { repositories: 'shared/*', users: ['*'], actions: ['pull'] },
    { repositories: 'public/*', users: ['anonymous'], actions: ['pull'] },
  ]);
  const of = (user: string | undefined, repo: string) => [...rights.actions(user, repo)].sort();

  it('ORs the rules that match the user and the repository', () => {
    expect(of('alice', 'moodle/web')).toEqual(['delete', 'pull', 'push']);
    expect(of('alice', 'moodle/db')).toEqual(['pull', 'push']);
    expect(of('alice', 'moodle/db/nested')).toEqual(['pull', 'push']); // "*" spans "/" (as in retention policies)
  });

  it('grants nothing no rule names', () => {
    expect(of('bob', 'moodle/web')).toEqual([]);
    expect(of('alice', 'moodlex/web')).toEqual([]);
    expect(of(undefined, 'shared/x')).toEqual([]); // "*" is not anonymous
  });

  it('"*" is any user who logged in, "anonymous" every client, logged in or not', () => {
    expect(of('bob', 'shared/x')).toEqual(['pull']);
    expect(of(undefined, 'public/base')).toEqual(['pull']);
    // docker sends credentials once logged in: a public image must stay pullable then.
    expect(of('alice', 'public/base')).toEqual(['pull']);
    expect(rights.can(undefined, 'public/base', 'push')).toBe(false);
  });
});

describe('password checks', () => {
  it('run a few at a time and turn away a flood with TOOMANYREQUESTS, answering the rest right', async () => {
    const users = new Users([{ name: 'alice', password: await hashPassword('pw', { logN: 12, r: 8, p: 1 }) }]);
    const attempts = Array.from({ length: 40 }, (_, i) => users.check('alice', i === 39 ? 'pw' : `guess-${i}`).then((ok) => ({ ok }), (err: Error) => ({ err })));
    const results = await Promise.all(attempts);
    const refused = results.filter((r) => 'err' in r);
    // 2 running and 32 queued; the other 6 are refused at once.
    expect(refused).toHaveLength(6);
    for (const r of refused) expect((r as { err: { code?: string } }).err.code).toBe('TOOMANYREQUESTS');
    expect(results.slice(0, 34).every((r) => 'ok' in r && r.ok === false)).toBe(true);
    // The queue drains: a check made now is answered.
    expect(await users.check('alice', 'pw')).toBe(true);
  });
});
