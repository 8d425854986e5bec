/**
 * The dashboard's two files, assets/dashboard/index.html and dashboard.js: plain HTML and JavaScript, no build step.
 * They sit two folders above this module both in src/ops/ (tsx) and in dist/ops/ (the package), and are read once.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface DashboardAssets {
  html: string;
  js: string;
}

let cached: DashboardAssets | undefined;

export function loadDashboard(): DashboardAssets {
  if (cached) return cached;
  const dir = fileURLToPath(new URL('../../assets/dashboard/', import.meta.url));
  try {
    cached = { html: readFileSync(dir + 'index.html', 'utf8'), js: readFileSync(dir + 'dashboard.js', 'utf8') };
  } catch (err) {
    // A broken install still serves metrics and the API; the page says what is missing.
    const why = err instanceof Error ? err.message : String(err);
    cached = { html: `<!doctype html><title>hotline</title><p>The dashboard files are missing (${why.replace(/[<&]/g, '')}).</p>`, js: '' };
  }
  return cached;
}
