/**
 * `hotline upgrade [--admin PATH] [--json]`: ask the supervisor to replace its worker with one started from what is
 * on disk now, handing every live connection over. Shows progress (a bar on a TTY) and prints a summary. The bar
 * follows the HTTP admin's event stream when the supervisor serves one (.hotline/http-admin.json), else it polls.
 */
import { adminRequest } from '../admin/admin-client.js';
import { defaultAdminPath } from '../admin/protocol.js';
import { HotlineError } from '../errors.js';
import type { UpgradeProgress, UpgradeSummary } from '../handoff/upgrade.js';
import { followEvents } from './follow-events.js';
import { readHttpAdminInfo } from './http-admin-flags.js';

const POLL_MS = 100;

export async function runUpgrade(flags: { admin?: string; json?: boolean }): Promise<number> {
  const socket = flags.admin ?? defaultAdminPath();
  const tty = process.stderr.isTTY === true && !flags.json;
  let done = false;
  // issue 14: with the HTTP admin on (hotline start --metrics), progress comes from its event stream instead.
  const info = tty ? readHttpAdminInfo(socket) : undefined;
  const events = new AbortController();
  const streamed =
    info?.token !== undefined &&
    (await followEvents(info.url, info.token, (e) => {
      if (e.type === 'upgrade-progress' && !done) process.stderr.write(`\r${bar(e.data as UpgradeProgress)}`);
    }, events.signal));
  const poll = async () => {
    while (!done) {
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      if (done) return;
      try {
        const s = (await adminRequest(socket, 'status', 5_000)) as { supervisor?: { upgrade?: UpgradeProgress } };
        const p = s.supervisor?.upgrade;
        if (p && !done) process.stderr.write(`\r${bar(p)}`);
      } catch {
        // Progress is best effort; the upgrade's own answer decides the outcome.
      }
    }
  };
  const progress = tty && !streamed ? poll() : Promise.resolve();
  let summary: UpgradeSummary;
  try {
    summary = (await adminRequest(socket, 'upgrade', 10 * 60_000)) as UpgradeSummary;
  } finally {
    done = true;
    events.abort();
    await progress;
    if (tty) process.stderr.write('\n');
  }
  if (flags.json) process.stdout.write(JSON.stringify(summary) + '\n');
  else process.stdout.write(formatSummary(summary) + '\n');
  if (summary.outcome === 'aborted') {
    const e = summary.error!;
    throw new HotlineError(e.code as never, `upgrade aborted, worker ${summary.fromPid} keeps serving: ${e.message}`);
  }
  return 0;
}

function bar(p: UpgradeProgress): string {
  const total = p.total ?? Math.max(p.sent, 1);
  const width = 30;
  const filled = Math.min(width, Math.round((p.moved / Math.max(total, 1)) * width));
  return `upgrade ${p.phase.padEnd(13)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${p.moved}/${p.total ?? '?'} connections`;
}

export function formatSummary(s: UpgradeSummary): string {
  const head = s.outcome === 'committed' ? `upgraded: worker ${s.fromPid} -> ${s.toPid}` : `upgrade aborted: worker ${s.fromPid} keeps serving`;
  // issue 15: the outbound links, when the plugin holds any.
  const links = s.links ? `; links moved ${s.links.moved}, reconnecting ${s.links.reconnecting}` : '';
  return `${head}; moved ${s.moved}, sent away ${s.sentAway}, failed ${s.failed}, ${s.durationMs} ms${links}`;
}
