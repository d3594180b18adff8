import type { Command } from 'commander';
import type { Action } from '../program.js';

export function registerProcessCommands(_program: Command, _action: Action): void {
  // Filled in by its issue.
}
