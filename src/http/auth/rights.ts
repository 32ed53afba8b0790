// Who may do what: the operator's access rules (auth.access), OR-ed. A rule names repositories
// by glob, users by name ("*": any logged-in user, "anonymous": every client, with or without
// credentials), and the actions it grants. Nothing is granted that no rule grants. What anonymous
// clients may do, logged-in users may do too: after `docker login` docker always sends
// credentials, and a public image must stay pullable.
import { globToRegExp } from '../../retention/policy.js';
import type { RepositoryAction } from './scope.js';

export interface AccessRule {
  repositories: string;
  users: string[];
  actions: RepositoryAction[];
}

export const ANONYMOUS = 'anonymous';
export const ANY_USER = '*';

export class Rights {
  private readonly rules: Array<AccessRule & { re: RegExp }>;

  constructor(rules: AccessRule[]) {
    this.rules = rules.map((r) => ({ ...r, re: globToRegExp(r.repositories) }));
  }

  /** What `user` (undefined: anonymous) may do in `repo`. */
  actions(user: string | undefined, repo: string): Set<RepositoryAction> {
    const granted = new Set<RepositoryAction>();
    for (const rule of this.rules) {
      if (!appliesTo(rule, user) || !rule.re.test(repo)) continue;
      for (const a of rule.actions) granted.add(a);
    }
    return granted;
  }

  can(user: string | undefined, repo: string, action: RepositoryAction): boolean {
    return this.actions(user, repo).has(action);
  }
}

function appliesTo(rule: AccessRule, user: string | undefined): boolean {
  if (rule.users.includes(ANONYMOUS)) return true;
  return user !== undefined && (rule.users.includes(ANY_USER) || rule.users.includes(user));
}
