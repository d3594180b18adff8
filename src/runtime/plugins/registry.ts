import { PLUGIN_NAMES, type PluginName, type Settings } from '../../config/settings.js';
import { errorText } from '../logger.js';
import type { Plugin, PluginContext, PluginFactory } from './types.js';

/**
 * Runs the plugins that settings.json enables (`plugins.<name>.enabled`), and on a
 * settings change starts the newly enabled and stops the newly disabled ones.
 */
export class PluginRegistry {
  private readonly running = new Map<PluginName, Plugin>();

  constructor(
    private readonly ctx: PluginContext,
    private readonly factories: Record<PluginName, PluginFactory>,
  ) {}

  async reconcile(settings: Settings): Promise<void> {
    for (const name of PLUGIN_NAMES) {
      const enabled = settings.plugins[name].enabled;
      const plugin = this.running.get(name);
      if (enabled && !plugin) await this.start(name);
      else if (!enabled && plugin) await this.stop(name, plugin);
    }
  }

  /** The running plugin that delivers to a platform (profiles' platform column). */
  forPlatform(platform: string | null): Plugin | undefined {
    for (const plugin of this.running.values()) if (plugin.platform === platform) return plugin;
    return undefined;
  }

  health(): Record<string, { ok: boolean; detail: string }> {
    return Object.fromEntries([...this.running].map(([name, plugin]) => [name, plugin.health()]));
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.running].map(([name, plugin]) => this.stop(name, plugin)));
  }

  private async start(name: PluginName): Promise<void> {
    try {
      const plugin = await this.factories[name](this.ctx);
      this.running.set(name, plugin);
      await plugin.start();
      this.ctx.logger.info('plugin started', { plugin: name });
    } catch (error) {
      this.running.delete(name);
      this.ctx.logger.error('plugin failed to start', { plugin: name, error: this.ctx.redact(errorText(error)) });
    }
  }

  private async stop(name: PluginName, plugin: Plugin): Promise<void> {
    this.running.delete(name);
    try {
      await plugin.stop();
      this.ctx.logger.info('plugin stopped', { plugin: name });
    } catch (error) {
      this.ctx.logger.warn('plugin did not stop cleanly', { plugin: name, error: this.ctx.redact(errorText(error)) });
    }
  }
}
