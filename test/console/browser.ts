// Debian's chromium, driven by playwright-core, headless. Nothing is downloaded: playwright-core
// only speaks the DevTools protocol to the browser already installed.
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

export interface Watched {
  page: Page;
  /** Every URL the page requested. */
  requests: string[];
  /** Console errors and uncaught exceptions, with the URL they came from. */
  errors: Array<{ text: string; url: string }>;
}

export function launch(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: ARGS });
}

export async function watchedPage(browser: Browser, viewport = { width: 1280, height: 900 }): Promise<Watched> {
  const page = await browser.newPage({ viewport, colorScheme: 'light', reducedMotion: 'reduce' });
  page.setDefaultTimeout(10_000); // a step that cannot happen fails fast, not at the test's timeout
  const requests: string[] = [];
  const errors: Array<{ text: string; url: string }> = [];
  page.on('request', (r) => requests.push(r.url()));
  page.on('console', (m) => m.type() === 'error' && errors.push({ text: m.text(), url: m.location().url }));
  page.on('pageerror', (e) => errors.push({ text: `uncaught: ${e.message}`, url: '' }));
  return { page, requests, errors };
}
