import { describe, expect, it } from 'vitest';
import { forEachLimit } from '../../src/retention/concurrency.js';

describe('forEachLimit', () => {
  it('keeps at most `limit` calls in flight and visits every item', async () => {
    let inFlight = 0;
    let peak = 0;
    const seen: number[] = [];
    await forEachLimit([...Array(20).keys()], 3, async (n) => {
      peak = Math.max(peak, ++inFlight);
      await new Promise((r) => setTimeout(r, 2));
      seen.push(n);
      inFlight--;
    });
    expect(peak).toBe(3);
    expect(seen.sort((a, b) => a - b)).toEqual([...Array(20).keys()]);
  });

  it('starts nothing after a failure, and rejects only once the calls in flight settled', async () => {
    const started: number[] = [];
    let settled = 0;
    const run = forEachLimit([...Array(20).keys()], 3, async (n) => {
      started.push(n);
      await new Promise((r) => setTimeout(r, n === 1 ? 1 : 20));
      settled++;
      if (n === 1) throw new Error('store failed');
    });
    await expect(run).rejects.toThrow('store failed');
    expect(started).toEqual([0, 1, 2]); // item 3 never started
    expect(settled).toBe(3); // 0 and 2 finished before the rejection
  });
});
