// Scopes of the Distribution token protocol: "repository:<name>:pull,push" and
// "registry:catalog:*". A scope names a resource type, a name and actions; the name may itself
// hold ":" (a class suffix on the type, or a name with a port), so the type is before the first
// colon and the actions after the last.

export type RepositoryAction = 'pull' | 'push' | 'delete';

/** One entry of a token's "access" claim, as the protocol spells it. */
export interface AccessEntry {
  type: string;
  name: string;
  actions: string[];
}

/** A "scope" parameter; several scopes may share one, separated by spaces. */
export function parseScopes(text: string): AccessEntry[] {
  const out: AccessEntry[] = [];
  for (const scope of text.split(' ')) {
    const first = scope.indexOf(':');
    const last = scope.lastIndexOf(':');
    if (first <= 0 || last === first) continue; // not type:name:actions; ignored, as Distribution does
    const type = scope.slice(0, first).replace(/\(.*\)$/, ''); // "repository(plugin)" is a repository
    const actions = scope.slice(last + 1).split(',').filter((a) => a !== '');
    out.push({ type, name: scope.slice(first + 1, last), actions });
  }
  return out;
}

export function formatScope(entry: AccessEntry): string {
  return `${entry.type}:${entry.name}:${entry.actions.join(',')}`;
}

export const CATALOG: AccessEntry = { type: 'registry', name: 'catalog', actions: ['*'] };

/** The admin API, granted only to the users of auth.admins. */
export const ADMIN: AccessEntry = { type: 'registry', name: 'admin', actions: ['*'] };
