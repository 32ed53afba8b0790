// The pure parts of token auth: scopes as clients send them, and rights from access rules.
import { describe, expect, it } from 'vitest';
import { Rights } from '../../src/http/auth/rights.js';
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
    expect(of('alice', 'public/base')).toEqual([]); // "anonymous" is not "every user"
    expect(of(undefined, 'shared/x')).toEqual([]); // and "*" is not anonymous
  });

  it('"*" is any user who logged in, "anonymous" a client without credentials', () => {
    expect(of('bob', 'shared/x')).toEqual(['pull']);
    expect(of(undefined, 'public/base')).toEqual(['pull']);
    expect(rights.can(undefined, 'public/base', 'push')).toBe(false);
  });
});
