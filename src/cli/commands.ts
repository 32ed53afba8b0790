// Every `dr-registry` command, in the order `--help` lists them. Adding a command is one line
// here (and its file under src/cli/).
import { auditCommandSpec } from './audit.js';
import { authCommandSpec } from './auth.js';
import type { Command } from './command.js';
import { configCommand } from './config.js';
import { keysCommandSpec } from './keys.js';
import { gcCommandSpec, pruneCommandSpec } from './maintenance.js';
import { pointsCommand, statusCommand } from './points.js';
import { serveCommand, settingsCommand, statsCommand } from './serve.js';
import { systemCommandSpec } from './system-spec.js';
import { verifyCommand } from './verify.js';
import { volumeCommandSpec } from './volume-spec.js';

export const COMMANDS: readonly Command[] = [
  serveCommand,
  statsCommand,
  pruneCommandSpec,
  gcCommandSpec,
  keysCommandSpec,
  authCommandSpec,
  auditCommandSpec,
  settingsCommand,
  configCommand,
  statusCommand,
  pointsCommand,
  verifyCommand,
  volumeCommandSpec,
  systemCommandSpec,
];
