// Repository names and tags, by the grammar of the OCI distribution-spec. Everything that reaches
// storage keys passes through here first, so "..", "%2e" or "/" in the wrong place never do.
import { RegistryError } from './errors.js';
import { isDigest } from './digest.js';

const COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
/** Unanchored source, for building route patterns. */
export const NAME_PATTERN = `${COMPONENT}(?:/${COMPONENT})*`;
const NAME_RE = new RegExp(`^${NAME_PATTERN}$`);
const TAG_RE = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
/** Distribution's limit; keeps every storage key well under object-store key limits. */
export const MAX_NAME_LENGTH = 255;

export function isValidName(name: string): boolean {
  return name.length <= MAX_NAME_LENGTH && NAME_RE.test(name);
}

export function assertValidName(name: string): void {
  if (!isValidName(name)) {
    throw new RegistryError('NAME_INVALID', 'invalid repository name', { name: name.slice(0, 300) });
  }
}

export function isValidTag(tag: string): boolean {
  return TAG_RE.test(tag);
}

export type Reference = { kind: 'tag'; tag: string } | { kind: 'digest'; digest: string };

/** A manifest reference is a tag or a digest; anything else cannot name a manifest. */
export function parseReference(reference: string): Reference | undefined {
  if (isValidTag(reference)) return { kind: 'tag', tag: reference };
  if (isDigest(reference)) return { kind: 'digest', digest: reference };
  return undefined;
}
