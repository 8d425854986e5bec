/**
 * What `require('hotline')` gives plugin code inside the host. The plugin's bundle keeps `hotline` external, and
 * the loader serves this module for it, so a plugin never loads a second copy of the host.
 */
export { definePlugin, HOST_API } from './contract.js';
export { HotlineError, isHotlineError } from '../errors.js';
