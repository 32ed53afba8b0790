// Parsing and validation of manifest bytes (pure: no storage). The bytes themselves are what gets
// stored and served; the parsed form is only used to check the manifest and find its references.
import { isDigest } from './digest.js';
import { manifestInvalid } from './errors.js';
import {
  DOCKER_MANIFEST,
  DOCKER_MANIFEST_LIST,
  DOCKER_SCHEMA1,
  DOCKER_SCHEMA1_SIGNED,
  OCI_INDEX,
  OCI_MANIFEST,
  isIndexMediaType,
  isManifestMediaType,
  type ManifestMediaType,
} from './media-types.js';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  artifactType?: string;
  platform?: Record<string, unknown>;
}

export interface ParsedManifest {
  mediaType: ManifestMediaType;
  /** Blobs the manifest needs in the repository (config and layers). */
  blobs: Descriptor[];
  /** Child manifests (of an index) the repository must hold. */
  manifests: Descriptor[];
  subject?: Descriptor;
  /** The type a referrers listing reports: artifactType, else the config's media type. */
  artifactType?: string;
  annotations?: Record<string, string>;
}

// RFC 6838 type/subtype with optional parameters; loose on purpose, strict enough to refuse junk.
const MEDIA_TYPE_RE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}(\s*;.*)?$/;

/**
 * Parses and validates a manifest. `contentType` is the request's Content-Type; the manifest's own
 * mediaType field must agree with it when both are present.
 */
export function parseManifest(bytes: Buffer, contentType: string | undefined): ParsedManifest {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw manifestInvalid(`invalid JSON: ${(err as Error).message}`);
  }
  if (!isObject(doc)) throw manifestInvalid('manifest must be a JSON object');
  const mediaType = resolveMediaType(doc, normaliseContentType(contentType));
  if (doc.schemaVersion !== 2) throw manifestInvalid('schemaVersion must be 2');
  const subject = doc.subject === undefined ? undefined : descriptor(doc.subject, 'subject');
  const annotations = stringMap(doc.annotations, 'annotations');
  if (doc.artifactType !== undefined && !isMediaType(doc.artifactType)) {
    throw manifestInvalid('artifactType must be a media type');
  }
  if (isIndexMediaType(mediaType)) {
    if (!Array.isArray(doc.manifests)) throw manifestInvalid('manifests must be an array');
    const manifests = doc.manifests.map((m, i) => descriptor(m, `manifests[${i}]`));
    return { mediaType, blobs: [], manifests, subject, artifactType: doc.artifactType as string | undefined, annotations };
  }
  const config = descriptor(doc.config, 'config');
  if (!Array.isArray(doc.layers)) throw manifestInvalid('layers must be an array');
  if (mediaType === DOCKER_MANIFEST && doc.layers.length === 0) throw manifestInvalid('layers must not be empty');
  const layers = doc.layers.map((l, i) => descriptor(l, `layers[${i}]`));
  return {
    mediaType,
    blobs: [config, ...layers],
    manifests: [],
    subject,
    artifactType: (doc.artifactType as string | undefined) ?? config.mediaType,
    annotations,
  };
}

/** A foreign (non-distributable) layer with URLs need not be in the registry. */
export function isForeign(d: Descriptor): boolean {
  return (d.urls?.length ?? 0) > 0 && /foreign|nondistributable/.test(d.mediaType);
}

function resolveMediaType(doc: Record<string, unknown>, contentType: string | undefined): ManifestMediaType {
  const declared = doc.mediaType;
  if (declared !== undefined && typeof declared !== 'string') throw manifestInvalid('mediaType must be a string');
  for (const t of [declared, contentType]) {
    if (t === DOCKER_SCHEMA1 || t === DOCKER_SCHEMA1_SIGNED) {
      throw manifestInvalid('Docker schema 1 manifests are not supported');
    }
  }
  const headerIsManifest = contentType !== undefined && isManifestMediaType(contentType);
  if (declared !== undefined && headerIsManifest && declared !== contentType) {
    throw manifestInvalid(`mediaType ${declared} does not match Content-Type ${contentType}`);
  }
  const chosen = declared ?? (headerIsManifest ? contentType : undefined) ?? guess(doc);
  if (!isManifestMediaType(chosen)) throw manifestInvalid(`unsupported manifest media type ${chosen}`);
  if ((chosen === DOCKER_MANIFEST || chosen === DOCKER_MANIFEST_LIST) && declared === undefined) {
    throw manifestInvalid('Docker manifests must declare their mediaType');
  }
  return chosen;
}

// OCI manifests may omit mediaType; the shape then decides.
function guess(doc: Record<string, unknown>): string {
  if (doc.manifests !== undefined) return OCI_INDEX;
  if (doc.config !== undefined) return OCI_MANIFEST;
  throw manifestInvalid('cannot tell the manifest type: no mediaType, config or manifests');
}

function normaliseContentType(value: string | undefined): string | undefined {
  const bare = value?.split(';')[0]?.trim().toLowerCase();
  return bare ? bare : undefined;
}

function descriptor(value: unknown, where: string): Descriptor {
  if (!isObject(value)) throw manifestInvalid(`${where} must be a descriptor object`);
  const { mediaType, digest, size, urls } = value;
  if (!isMediaType(mediaType)) throw manifestInvalid(`${where}.mediaType must be a media type`);
  if (typeof digest !== 'string' || !isDigest(digest)) throw manifestInvalid(`${where}.digest is not a valid digest`);
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw manifestInvalid(`${where}.size must be a non-negative integer`);
  }
  if (urls !== undefined && !(Array.isArray(urls) && urls.every((u) => typeof u === 'string'))) {
    throw manifestInvalid(`${where}.urls must be an array of strings`);
  }
  const d: Descriptor = { mediaType, digest, size };
  if (urls) d.urls = urls as string[];
  const annotations = stringMap(value.annotations, `${where}.annotations`);
  if (annotations) d.annotations = annotations;
  if (value.artifactType !== undefined) {
    if (!isMediaType(value.artifactType)) throw manifestInvalid(`${where}.artifactType must be a media type`);
    d.artifactType = value.artifactType;
  }
  if (isObject(value.platform)) d.platform = value.platform;
  return d;
}

function stringMap(value: unknown, where: string): Record<string, string> | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value) || !Object.values(value).every((v) => typeof v === 'string')) {
    throw manifestInvalid(`${where} must map strings to strings`);
  }
  return value as Record<string, string>;
}

function isMediaType(value: unknown): value is string {
  return typeof value === 'string' && MEDIA_TYPE_RE.test(value);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
