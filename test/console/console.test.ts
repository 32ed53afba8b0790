// The console in a real browser (Debian's chromium, headless) against a real registry holding a
// week of real pushes (fixture.ts): sign-in, systems, a point timeline, pin and unpin, a restore
// that `docker pull` then confirms, a prune dry run, storage, GC and keys, a phone's width, the
// keyboard, and a 401. Each main screen is saved to docs/console/*.png.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { docker, dockerPull } from '../e2e/clients.js';
import { launch, watchedPage, type Watched } from './browser.js';
import { ADMIN, ADMIN_TOKEN, VOLUME_TYPE, startConsoleFixture, type ConsoleFixture } from './fixture.js';

// Functions passed to page.evaluate run in the browser; this project is typed without the DOM
// library, so its few globals are declared here, for this file only.
/* eslint-disable @typescript-eslint/no-explicit-any */
declare const document: any;
declare const sessionStorage: any;
declare const localStorage: any;
type HTMLElement = any;
type HTMLInputElement = any;

const SHOTS = path.resolve(import.meta.dirname, '../../docs/console');

interface Point {
  tag: string;
  digest: string;
  pushedAt: string;
  pinned: boolean;
  current: boolean;
  lockedUntil?: string;
}
interface Points {
  points: Point[];
  pruned: Array<{ tag: string; digest: string }>;
}
/** Waits for what a re-render shows (a loaded machine can take seconds). */
const WAIT = { timeout: 10_000 };
const short = (digest: string) => digest.slice(0, 'sha256:'.length + 12);

describe('console in a browser', () => {
  let fx: ConsoleFixture;
  let browser: Browser;
  let watched: Watched;
  let page: Page;
  const dockerHost = inject('dockerHost');

  beforeAll(async () => {
    [fx, browser] = await Promise.all([startConsoleFixture(), launch()]);
    await mkdir(SHOTS, { recursive: true });
    watched = await watchedPage(browser);
    page = watched.page;
  });
  afterAll(async () => {
    await browser?.close();
    await fx?.stop();
  });

  const points = (repo: string) => fx.admin<Points>(`/recovery-points?repository=${encodeURIComponent(repo)}`);
  const shot = (name: string, fullPage = true) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage });
  const row = (digest: string, tag?: string) => page.locator(`tr[data-digest="${digest}"]${tag ? `[data-tag="${tag}"]` : ''}`);

  it('refuses a wrong password, then signs in with the right one', async () => {
    await page.goto(`${fx.origin}/console/`);
    await expect.poll(() => page.locator('#login').isVisible(), WAIT).toBe(true);
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('login-user');
    await page.fill('#login-user', ADMIN.user);
    await page.fill('#login-password', 'not-the-password');
    await page.click('#login-submit');
    await expect.poll(() => page.locator('#login-message').textContent(), WAIT).toContain('Sign-in refused');
    expect(await page.locator('#view').isVisible()).toBe(false);
    await shot('login', false);

    await page.fill('#login-password', ADMIN.password);
    await page.click('#login-submit');
    await page.waitForSelector('.systems-table');
    const repos = (await fx.admin<{ repositories: Array<{ name: string }> }>('/repositories')).repositories.map((r) => r.name);
    const shown = await page.locator('.systems-table tbody th a').allTextContents();
    expect(shown.sort()).toEqual(repos.sort());
    expect(await page.locator('#who').textContent()).toBe(`Signed in as ${ADMIN.user}`);
    // Kept for this tab only, and the password field is cleared.
    expect(await page.evaluate(() => [Object.keys(sessionStorage).length, localStorage.length, document.cookie])).toEqual([1, 0, '']);
    expect(await page.inputValue('#login-password')).toBe('');
  });

  it('shows every system with its last push, its points, and storage over time', async () => {
    // With RPO monitoring the registry reports each system's figures (GET /admin/v1/systems);
    // without it, the console counts the recovery points itself.
    const reported = await fetch(`${fx.origin}/admin/v1/systems`, { headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } });
    const systems = reported.ok
      ? ((await reported.json()) as { systems: Array<{ repository: string; points: number; withinRpo: boolean | null; lastPushAt: string | null }> }).systems
      : undefined;
    for (const name of ['erp/db', 'shop/web', 'legacy/crm']) {
      const tr = page.locator('.systems-table tbody tr', { has: page.locator(`a:text-is("${name}")`) });
      const { points: kept } = await points(name);
      const system = systems?.find((s) => s.repository === name);
      expect(await tr.locator('td[data-label="Points"]').textContent()).toBe(String(system ? system.points : kept.length));
      const state = await tr.locator('td[data-label="State"]').textContent();
      if (system?.withinRpo === false) expect(state).toMatch(/^Out of RPO/);
      else expect(state).toBe(system?.withinRpo ? 'Within RPO' : 'No RPO set');
      expect(await tr.evaluate((el) => el.classList.contains('row-bad'))).toBe(system?.withinRpo === false);
      // The registry's last push is the tag pointer's last write (a re-push counts too), a few ms
      // after the point's pushedAt; the console shows the registry's figure when it has one.
      const newest = kept.map((p) => p.pushedAt).sort().at(-1)!;
      const lastPush = system?.lastPushAt ?? newest;
      expect(await tr.locator('td[data-label="Last push"] time').getAttribute('datetime')).toBe(lastPush);
    }
    expect(await page.locator('.systems-table tbody tr', { has: page.locator('a:text-is("legacy/crm")') }).locator('td[data-label="Last push"]').textContent()).toContain('8 days ago');
    expect(await page.locator('svg.chart.storage path.line-unique').count()).toBe(1);
    expect(await page.locator('svg.chart.storage').getAttribute('aria-label')).toMatch(/^Storage over time: now .+ stored for \d+ recovery points/);
    await shot('systems');
  });

  it('shows a system’s timeline: kept, pinned and pruned points, sizes, layers and volume snapshots', async () => {
    const crm = await points('legacy/crm');
    await page.click('a:text-is("legacy/crm")');
    await page.waitForSelector('.points-table');
    expect(await page.locator('#view h1').textContent()).toBe('legacy/crm');
    expect(crm.pruned.length).toBeGreaterThan(0);
    expect(await page.locator('tbody.point.is-pruned').count()).toBe(crm.pruned.length);
    expect(await page.locator('svg.timeline .m-pruned').count()).toBe(crm.pruned.length);
    const prunedState = page.locator('tbody.is-pruned td.states').first();
    expect(await prunedState.locator('.badge').allTextContents()).toEqual(['Pruned']);
    expect(await prunedState.locator('.sub').textContent()).toMatch(/^restorable until \d{4}-\d\d-\d\d \d\d:\d\d UTC$/);

    await page.goto(`${fx.origin}/console/#/system/${encodeURIComponent('erp/db')}`);
    await page.waitForSelector('.points-table');
    const erp = await points('erp/db');
    const details = await fx.admin<{ points: Array<{ digest: string; layers: unknown[]; referrers: unknown[] }> }>('/recovery-points/details?repository=erp%2Fdb');
    expect(await page.locator('tbody.point').count()).toBe(erp.points.length);
    expect(await page.locator('svg.timeline g.marker').count()).toBe(erp.points.length);
    const pinned = erp.points.find((p) => p.pinned)!;
    expect(await row(pinned.digest).locator('.badge').allTextContents()).toEqual(['Kept', 'Pinned']);
    expect(await page.locator('svg.timeline .m-pinned').count()).toBe(1);
    // Locked points, as the registry's lock says (retention.lock in fixture.ts).
    const locked = erp.points.filter((p) => p.lockedUntil);
    expect(locked.length).toBeGreaterThan(0);
    expect(await page.locator('td.states .badge:text-is("Locked")').count()).toBe(locked.length);
    expect(await page.locator('svg.timeline .m-locked').count()).toBe(locked.filter((p) => !p.pinned).length);
    const layersOf = (digest: string) => details.points.find((d) => d.digest === digest)!.layers.length;
    const nightly = erp.points.find((p) => p.current && p.tag === 'nightly')!;
    expect(await row(nightly.digest, 'nightly').locator('td[data-label="Content"]').textContent()).toBe(`${layersOf(nightly.digest)} layers`);
    // The volume snapshot: a point of its own tag, told apart by its artifact type.
    const volume = erp.points.find((p) => p.current && p.tag === 'pgdata')!;
    const volumeRow = row(volume.digest, 'pgdata');
    expect(await volumeRow.locator('td[data-label="Content"]').textContent()).toBe(`volume snapshot · ${layersOf(volume.digest)} parts`);
    for (const label of ['Size', 'Only this point']) expect(await volumeRow.locator(`td[data-label="${label}"]`).textContent()).toMatch(/^\d+(\.\d+)? (B|KiB|MiB)$/);
    await volumeRow.getByRole('button', { name: 'Details' }).click();
    const detail = page.locator(`#${await volumeRow.getAttribute('id')} + tr.detail`);
    expect(await detail.isVisible()).toBe(true);
    expect(await detail.locator('h3').allTextContents()).toEqual(['Volume snapshot parts', 'Annotations']);
    expect(await detail.locator('dd').allTextContents()).toContain(VOLUME_TYPE);
    expect(await detail.locator('input.command').inputValue()).toBe(`docker pull ${fx.registry.hostPort}/erp/db@${volume.digest}`);
    await volumeRow.getByRole('button', { name: 'Hide details' }).click();
    await shot('system');
  });

  it('pins and unpins a point, each only after confirming', async () => {
    const target = (await points('erp/db')).points.find((p) => !p.pinned && !p.current && !p.lockedUntil)!;
    const isPinned = async () => (await points('erp/db')).points.find((p) => p.digest === target.digest)!.pinned;
    await row(target.digest).getByRole('button', { name: 'Pin', exact: true }).click();
    await page.waitForSelector('dialog[open]');
    expect(await page.locator('#confirm-body').textContent()).toContain(`Pin ${short(target.digest)} in erp/db`);
    expect(await page.locator('#confirm-body').textContent()).toContain('Retention will keep every recovery point of this digest');
    await page.click('#confirm-cancel');
    expect(await page.locator('dialog[open]').count()).toBe(0);
    expect(await isPinned()).toBe(false);

    await row(target.digest).getByRole('button', { name: 'Pin', exact: true }).click();
    await page.click('#confirm-ok');
    await expect.poll(() => row(target.digest).locator('.badge').allTextContents(), WAIT).toContain('Pinned');
    expect(await isPinned()).toBe(true);

    await row(target.digest).getByRole('button', { name: 'Unpin' }).click();
    expect(await page.locator('#confirm-body').textContent()).toContain('Retention policies apply to it again');
    await page.click('#confirm-ok');
    await expect.poll(() => row(target.digest).locator('.badge').allTextContents(), WAIT).toEqual(['Kept']);
    expect(await isPinned()).toBe(false);
  });

  it('restores a point to its tag after confirming, and docker pull then gets that point', async () => {
    const before = await points('erp/db');
    const current = before.points.find((p) => p.current && p.tag === 'nightly')!;
    const target = before.points.filter((p) => p.tag === 'nightly' && p.digest !== current.digest).at(-2)!;
    await row(target.digest).getByRole('button', { name: 'Restore…' }).click();
    await page.waitForSelector('dialog[open]');
    const what = await page.locator('#restore-what').textContent();
    expect(what).toContain(`erp/db:nightly will point at ${short(target.digest)} instead of ${short(current.digest)}`);
    expect(what).toContain('Nothing is deleted');
    expect(await page.locator('dialog input.command').inputValue()).toBe(`docker pull ${fx.registry.hostPort}/erp/db:nightly`);
    expect(await page.locator('#confirm-ok').textContent()).toBe('Restore erp/db:nightly');
    // An invalid tag cannot be confirmed.
    await page.fill('#restore-tag', '-bad');
    expect(await page.locator('#confirm-ok').isDisabled()).toBe(true);
    await page.fill('#restore-tag', 'nightly');
    await shot('restore', false);
    await page.click('#confirm-ok');
    await page.waitForSelector('.flash');
    expect(await page.locator('.flash').textContent()).toContain(`erp/db:nightly now points at ${target.digest}`);

    const after = await points('erp/db');
    expect(after.points.find((p) => p.current && p.tag === 'nightly')!.digest).toBe(target.digest);
    expect(after.points.length).toBe(before.points.length + 1); // recorded as a new point
    // The command the console shows, run by the real docker client.
    const command = await page.locator('.flash input.command').inputValue();
    const [verb, ref] = command.replace(/^docker /, '').split(' ');
    expect(verb).toBe('pull');
    expect(await dockerPull(dockerHost, ref!)).toBe(target.digest);
    await docker(dockerHost)(['rmi', ref!]);
  });

  it('runs a prune dry run that lists what would go, and changes nothing', async () => {
    const before = await Promise.all(['erp/db', 'shop/web', 'legacy/crm'].map(points));
    await page.click('#nav a[data-route="retention"]');
    await page.waitForSelector('#dry-run');
    expect(await page.locator('table.data tbody th code').allTextContents()).toEqual(['legacy/*', 'erp/*', '*']);
    await page.click('#dry-run');
    await page.waitForSelector('.dry-run');
    const plan = await fx.admin<{ droppedPoints: number; repositories: Array<{ points: Array<{ digest: string; keep: boolean }> }> }>('/prune', { dryRun: true });
    const dropped = plan.repositories.flatMap((r) => r.points.filter((p) => !p.keep).map((p) => p.digest));
    expect(dropped.length).toBeGreaterThan(0);
    expect((await page.locator('tr.row-drop').evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset.digest))).sort()).toEqual(dropped.sort());
    expect(await page.locator('.dry-run .notice').textContent()).toContain(`would drop ${plan.droppedPoints} recovery point`);
    expect(await Promise.all(['erp/db', 'shop/web', 'legacy/crm'].map(points))).toEqual(before);
    await shot('retention');
  });

  it('shows storage and dedup, the last garbage collection, and the keys', async () => {
    await fx.admin('/gc', { dryRun: true });
    await expect.poll(async () => (await fx.admin<{ running: boolean; lastReport?: unknown }>('/gc')).lastReport !== undefined, { timeout: 20_000 }).toBe(true);
    await page.click('#nav a[data-route="storage"]');
    await page.waitForSelector('.gc');
    expect(await page.locator('.gc dd').first().textContent()).toMatch(/^dry run, finished \d{4}-/);
    expect(await page.locator('.figures .card-label').allTextContents()).toEqual(['Stored for recovery points', 'Without dedup', 'Saved by dedup', 'Everything in the store']);
    await shot('storage');

    await page.click('#nav a[data-route="keys"]');
    await page.waitForSelector('.keys table');
    const keys = await fx.admin<{ activeKey: string; keys: Array<{ id: string }> }>('/keys');
    expect(await page.locator('.keys tbody th').allTextContents()).toEqual(keys.keys.map((k) => k.id));
    expect(await page.locator('.keys tbody tr', { has: page.locator('.badge:text-is("Active")') }).locator('th').textContent()).toBe(keys.activeKey);
    await shot('keys');
  });

  it('fits a laptop’s and a phone’s width', async () => {
    await page.setViewportSize({ width: 1024, height: 768 });
    for (const route of ['#/systems', `#/system/${encodeURIComponent('legacy/crm')}`, `#/system/${encodeURIComponent('erp/db')}`]) {
      await page.goto(`${fx.origin}/console/${route}`);
      await page.waitForSelector('#view h1');
      await page.waitForSelector('table.data');
      expect(await page.evaluate(() => document.documentElement.scrollWidth <= document.documentElement.clientWidth), route).toBe(true);
    }
    await page.setViewportSize({ width: 390, height: 844 });
    await page.click('#nav a[data-route="systems"]');
    await page.waitForSelector('.systems-table');
    expect(await page.evaluate(() => document.documentElement.scrollWidth <= document.documentElement.clientWidth)).toBe(true);
    await shot('narrow');
    await page.goto(`${fx.origin}/console/#/system/${encodeURIComponent('erp/db')}`);
    await page.waitForSelector('.points-table');
    expect(await page.evaluate(() => document.documentElement.scrollWidth <= document.documentElement.clientWidth)).toBe(true);
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  it('gives the focus to the new heading even when a re-render overtakes the navigation', async () => {
    await page.goto(`${fx.origin}/console/#/systems`);
    await page.waitForSelector('.systems-table');
    // The system's answers arrive late (a slow machine), and meanwhile the window is resized,
    // which re-renders quietly: that render supersedes the navigation's and must move the focus.
    await page.route('**/admin/v1/**', async (route) => {
      await new Promise((r) => setTimeout(r, 800));
      await route.continue();
    });
    try {
      await page.evaluate(() => (document.location.hash = `#/system/${encodeURIComponent('erp/db')}`));
      await page.setViewportSize({ width: 1100, height: 900 });
      await page.waitForSelector('.points-table', WAIT);
      await expect.poll(() => page.evaluate(() => document.activeElement?.tagName), WAIT).toBe('H1');
    } finally {
      await page.unroute('**/admin/v1/**');
      await page.setViewportSize({ width: 1280, height: 900 });
    }
  });

  it('can be used with the keyboard, and every field has a label', async () => {
    await page.goto(`${fx.origin}/console/#/systems`);
    await page.waitForSelector('.systems-table');
    // Tab from the top reaches the first system; Enter opens it with its heading focused.
    await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
    let focused = '';
    for (let i = 0; i < 20 && focused !== 'erp/db'; i++) {
      await page.keyboard.press('Tab');
      focused = await page.evaluate(() => (document.activeElement?.closest('.systems-table') ? (document.activeElement?.textContent ?? '') : ''));
    }
    expect(focused).toBe('erp/db');
    await page.keyboard.press('Enter');
    await page.waitForSelector('.points-table');
    await expect.poll(() => page.evaluate(() => document.activeElement?.tagName), WAIT).toBe('H1');
    // A dialog opens on Cancel (a stray Enter changes nothing) and Escape gives focus back.
    const pin = page.getByRole('button', { name: 'Pin', exact: true }).first();
    await pin.focus();
    await page.keyboard.press('Enter');
    await page.waitForSelector('dialog[open]');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('confirm-cancel');
    await page.keyboard.press('Escape');
    expect(await page.locator('dialog[open]').count()).toBe(0);
    expect(await pin.evaluate((el) => el === document.activeElement)).toBe(true);
    const unlabelled = await page.evaluate(() =>
      [...document.querySelectorAll('input, select, textarea')].filter((el) => (el as HTMLInputElement).labels?.length === 0 && !el.getAttribute('aria-label')).map((el) => el.outerHTML),
    );
    expect(unlabelled).toEqual([]);
  });

  it('returns to sign-in with a clear message on a 401, and signs in with the admin token', async () => {
    await page.evaluate(() => sessionStorage.setItem('dr-registry.console.credentials', JSON.stringify({ kind: 'bearer', token: 'revoked-token-0123456789' })));
    await page.getByRole('button', { name: 'Refresh' }).click();
    await page.waitForSelector('#login:not([hidden])');
    expect(await page.locator('#login-message').textContent()).toContain('The registry refused your credentials (401)');
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);

    await page.check('input[name="kind"][value="bearer"]');
    await page.fill('#login-token', ADMIN_TOKEN);
    await page.click('#login-submit');
    await page.waitForSelector('.points-table'); // back where it was
    expect(await page.locator('#who').textContent()).toBe('Signed in with the admin token');
    await page.click('#signout');
    await page.waitForSelector('#login:not([hidden])');
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
  });

  it('fetched nothing from elsewhere and logged no errors but the refusals it showed', () => {
    const origin = new URL(fx.origin).origin;
    expect(watched.requests.filter((u) => new URL(u).origin !== origin)).toEqual([]);
    // Chromium logs every refused fetch; /admin/v1/systems is absent on this registry (404).
    const unexpected = watched.errors.filter(
      (e) => !(/status of 401/.test(e.text) && e.url.includes('/admin/v1/')) && !(/status of 404/.test(e.text) && e.url.endsWith('/admin/v1/systems')),
    );
    expect(unexpected).toEqual([]);
  });
});
