// deploy/prometheus/alerts.yml: parses, names only metrics the registry exports, and passes
// Prometheus' own checker and its rule unit tests (promtool, from Debian's prometheus package,
// installed by deploy/install-test-deps.sh).
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { Metrics } from '../../src/metrics.js';

const DIR = path.resolve(import.meta.dirname, '../../deploy/prometheus');
const run = promisify(execFile);

interface Rule {
  alert: string;
  expr: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

describe('deploy/prometheus/alerts.yml', () => {
  const doc = YAML.parse(readFileSync(path.join(DIR, 'alerts.yml'), 'utf8')) as { groups: Array<{ name: string; rules: Rule[] }> };
  const rules = doc.groups.flatMap((g) => g.rules);

  it('alerts on systems out of RPO with the metrics the registry exports', async () => {
    const exported = new Set((await new Metrics().register.getMetricsAsJSON()).map((m) => m.name));
    const byName = new Map(rules.map((r) => [r.alert, r]));
    expect(byName.get('DrRegistrySystemOutOfRpo')?.expr).toMatch(/drreg_rpo_last_push_age_seconds[\s\S]*>[\s\S]*drreg_rpo_objective_seconds/);
    expect(byName.get('DrRegistrySystemsOutOfRpo')?.expr).toContain('drreg_rpo_systems_out_of_rpo');
    for (const rule of rules) {
      const names = rule.expr.match(/\bdrreg_[a-z_]+/g) ?? [];
      expect(names.length, rule.alert).toBeGreaterThan(0);
      for (const name of names) expect(exported, `${rule.alert} uses ${name}`).toContain(name);
      expect(rule.labels?.severity, rule.alert).toMatch(/^(critical|warning)$/);
    }
  });

  it('passes promtool check rules and its unit tests', async () => {
    const checked = await run('promtool', ['check', 'rules', 'alerts.yml'], { cwd: DIR });
    expect(checked.stdout).toMatch(/SUCCESS: 2 rules found/);
    const tested = await run('promtool', ['test', 'rules', 'alerts.test.yml'], { cwd: DIR });
    expect(tested.stdout).toMatch(/SUCCESS/);
  });
});
