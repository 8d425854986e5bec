/**
 * Shape validation of a loaded plugin module. TypeScript types vanish at build time, so the host checks the default
 * export itself (the same idea as Go's plugin.Lookup plus a type assertion) and names the wrong field.
 */
import { HotlineError } from '../errors.js';
import { HOST_API, type PluginDefinition } from './contract.js';

const OPTIONAL_FUNCTIONS = ['init', 'migrate', 'migrateConnection', 'check', 'onOpen', 'onClose', 'dispose', 'onLinkOpen', 'onLinkReconnect', 'onLinkMessage', 'onLinkClose', 'migrateLink', 'onPresence'] as const;

/** Read the default export of an evaluated CommonJS module, accepting both esbuild's and hand-written forms. */
export function defaultExportOf(moduleExports: unknown): unknown {
  if (moduleExports === null || moduleExports === undefined) return undefined;
  if (typeof moduleExports === 'object' && 'default' in moduleExports) {
    return (moduleExports as { default: unknown }).default;
  }
  // A bare `module.exports = definePlugin(...)` is a plugin too.
  if (typeof moduleExports === 'object' && 'onMessage' in moduleExports) return moduleExports;
  return undefined;
}

/** Throw a coded error unless `value` is a plugin definition for this host's API. */
export function validatePlugin(value: unknown): PluginDefinition {
  if (value === undefined || value === null) {
    throw new HotlineError('HOTLINE_E_PLUGIN_NO_DEFAULT', 'the plugin module has no default export: export default definePlugin({...})');
  }
  if (typeof value !== 'object') {
    throw new HotlineError('HOTLINE_E_PLUGIN_SHAPE', `the default export must be an object from definePlugin(), got ${typeof value}`);
  }
  const def = value as Record<string, unknown>;
  if (typeof def.name !== 'string' || def.name.length === 0) {
    throw new HotlineError('HOTLINE_E_PLUGIN_SHAPE', 'the plugin field "name" must be a non-empty string');
  }
  if (typeof def.version !== 'string' || def.version.length === 0) {
    throw new HotlineError('HOTLINE_E_PLUGIN_SHAPE', `plugin "${def.name}": the field "version" must be a non-empty string`);
  }
  if (typeof def.api !== 'number') {
    throw new HotlineError('HOTLINE_E_PLUGIN_SHAPE', `plugin "${def.name}": the field "api" must be a number (this host implements api ${HOST_API})`);
  }
  if (def.api !== HOST_API) {
    throw new HotlineError('HOTLINE_E_PLUGIN_API', `plugin "${def.name}" was written for api ${def.api}; this host implements api ${HOST_API}`);
  }
  if (typeof def.onMessage !== 'function') {
    throw new HotlineError('HOTLINE_E_PLUGIN_SHAPE', `plugin "${def.name}": the field "onMessage" must be a function`);
  }
  for (const field of OPTIONAL_FUNCTIONS) {
    if (def[field] !== undefined && typeof def[field] !== 'function') {
      throw new HotlineError('HOTLINE_E_PLUGIN_SHAPE', `plugin "${def.name}": the field "${field}" must be a function when present`);
    }
  }
  return value as PluginDefinition;
}
