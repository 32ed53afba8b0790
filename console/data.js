// Data the views share: systems with their last push and RPO state, from GET /admin/v1/systems
// when the registry has it, else derived from each repository's recovery points (no RPO then).
import { ApiError, api, mapLimit } from './api.js';

export const enc = encodeURIComponent;

/** A call whose failure should not blank the page (401 still signs out). */
export async function optional(promise) {
  try {
    return await promise;
  } catch (err) {
    if (err instanceof ApiError) return null;
    throw err;
  }
}

/**
 * { systems: [{ repository, lastPushAt, lastPushAgeSeconds, rpoSeconds, withinRpo, points,
 * usage? }], outOfRpo, derived } with the systems out of RPO first.
 */
export async function loadSystems() {
  const [repos, reported] = await Promise.all([api('/repositories'), api('/systems', { allow404: true })]);
  const usage = new Map((repos?.repositories ?? []).map((r) => [r.name, r]));
  let systems;
  let derived = false;
  if (reported && Array.isArray(reported.systems)) {
    systems = reported.systems.map((s) => ({ ...s, usage: usage.get(s.repository) }));
    for (const name of usage.keys()) {
      if (!systems.some((s) => s.repository === name)) systems.push(derivedSystem(name, null, usage.get(name)));
    }
  } else {
    derived = true;
    systems = await mapLimit([...usage.keys()], 4, async (name) => {
      const points = await api(`/recovery-points?repository=${enc(name)}`);
      return derivedSystem(name, points, usage.get(name));
    });
  }
  systems.sort((a, b) => rank(a) - rank(b) || a.repository.localeCompare(b.repository));
  const outOfRpo = typeof reported?.outOfRpo === 'number' ? reported.outOfRpo : systems.filter((s) => s.withinRpo === false).length;
  return { systems, outOfRpo, derived };
}

/** Out of RPO first, then never pushed, then the rest. */
function rank(s) {
  if (s.withinRpo === false) return 0;
  if (!s.lastPushAt) return 1;
  return 2;
}

function derivedSystem(repository, points, usage) {
  const times = (points?.points ?? []).map((p) => Date.parse(p.pushedAt)).filter((t) => !Number.isNaN(t));
  const last = times.length ? Math.max(...times) : null;
  return {
    repository,
    lastPushAt: last === null ? null : new Date(last).toISOString(),
    lastPushAgeSeconds: last === null ? null : Math.max(0, (Date.now() - last) / 1000),
    rpoSeconds: null,
    withinRpo: null,
    points: points?.points?.length ?? null,
    usage,
  };
}

/** The age of the last push, now (the API's figure is as old as the page). */
export function pushAge(system) {
  if (system.lastPushAt) return Math.max(0, (Date.now() - Date.parse(system.lastPushAt)) / 1000);
  return system.lastPushAgeSeconds ?? null;
}

export function isLocked(point, now = Date.now()) {
  if (point.locked === true) return true;
  const until = point.lockedUntil ?? point.lock?.until ?? point.retainUntil;
  return typeof until === 'string' && Date.parse(until) > now;
}

export function lockedUntil(point) {
  return point.lockedUntil ?? point.lock?.until ?? point.retainUntil ?? null;
}

/** Volume snapshots attached to a point: referrers that are volumes (or a `volumes` list other code may add). */
export function volumesOf(point, detail) {
  const found = [];
  if (Array.isArray(point.volumes)) found.push(...point.volumes);
  if (Array.isArray(detail?.volumes)) found.push(...detail.volumes);
  for (const r of detail?.referrers ?? []) if (isVolume(r)) found.push(r);
  return found;
}

export function isVolume(d) {
  if (!d || typeof d !== 'object') return false;
  return /volume/i.test(d.artifactType ?? '') || /volume/i.test(d.mediaType ?? '') || Object.keys(d.annotations ?? {}).some((k) => /volume/i.test(k));
}
