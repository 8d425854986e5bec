/**
 * `hotline reload`, `rollback` and `status`: one request each over the admin socket.
 */
import { adminRequest } from '../admin/admin-client.js';
import { defaultAdminPath } from '../admin/protocol.js';
import type { HostStatus } from '../host/host.js';
import type { SwapRecord } from '../swap/history.js';

export async function runAdminCommand(
  cmd: 'reload' | 'rollback' | 'status',
  flags: { admin?: string; json?: boolean; force?: boolean },
): Promise<number> {
  const socket = flags.admin ?? defaultAdminPath();
  const result = await adminRequest(socket, cmd, 60_000, { force: cmd === 'reload' && flags.force === true });
  if (cmd === 'status') {
    process.stdout.write(flags.json ? JSON.stringify(result, null, 2) + '\n' : formatStatus(result as HostStatus));
    return 0;
  }
  const record = result as SwapRecord;
  if (flags.json) process.stdout.write(JSON.stringify(record) + '\n');
  else if (record.outcome === 'unchanged') process.stdout.write(`unchanged: still serving ${record.to} (hash ${record.hash}); --force loads it again\n`);
  else process.stdout.write(`${cmd === 'reload' ? 'reloaded' : 'rolled back'}: now serving ${record.to} (hash ${record.hash}, ${record.totalMs} ms)\n`);
  return 0;
}

/** What a supervisor (`hotline start`) adds to the worker's status. */
interface SupervisorStatus {
  pid: number;
  state: string;
  restarts: number;
  restartDelayMs?: number;
  upgrades: Array<{ outcome: string; moved: number; durationMs: number }>;
  /** Absent from an older supervisor. */
  watchdog?: { timeoutMs: number; hangs: number; last?: { code: string; pid: number; silentMs: number } };
  /** Absent from an older supervisor (issue 11: last known good). */
  lastKnownGood?: {
    good?: { hash: string; how: string };
    probation?: { hash: string };
    fallbacks: Array<{ code: string; from: string; to: string; cause: string }>;
  };
}

/** The builds line: which build a restart goes back to, and the restarts that did. */
function formatBuilds(lkg: NonNullable<SupervisorStatus['lastKnownGood']>): string {
  const parts = [lkg.good ? `last known good ${lkg.good.hash} (${lkg.good.how})` : 'no known good build yet'];
  if (lkg.probation) parts.push(`on probation ${lkg.probation.hash}`);
  const f = lkg.fallbacks.at(-1);
  if (f) parts.push(`${lkg.fallbacks.length} restart(s) on it (latest: ${f.code}, ${f.from} -> ${f.to} after ${f.cause})`);
  return `builds      ${parts.join('; ')}`;
}

function formatStatus(s: HostStatus & { supervisor?: SupervisorStatus }): string {
  const lines: string[] = [];
  const p = s.plugin;
  lines.push(`plugin      ${p ? `${p.name}@${p.version} (hash ${p.hash}, seq ${p.seq}) from ${p.entry}` : 'none'}`);
  lines.push(`state       ${s.state}, swap phase ${s.phase}, pid ${s.pid}, up ${(s.uptimeMs / 1000).toFixed(1)} s`);
  const sup = s.supervisor;
  if (sup) {
    const restarts = sup.restarts === 0 ? 'no restarts' : `${sup.restarts} restarts (the latest after ${sup.restartDelayMs} ms of backoff)`;
    const last = sup.upgrades.at(-1);
    const upgrades = last ? `, ${sup.upgrades.length} upgrades (last ${last.outcome}, ${last.moved} moved in ${last.durationMs} ms)` : '';
    lines.push(`supervisor  pid ${sup.pid}, ${sup.state}, ${restarts}${upgrades}`);
    const dog = sup.watchdog;
    if (dog) {
      const hung = dog.last ? `, ${dog.hangs} hung worker(s) killed (latest: ${dog.last.code}, worker ${dog.last.pid} silent ${dog.last.silentMs} ms)` : '';
      lines.push(`watchdog    ${dog.timeoutMs > 0 ? `${dog.timeoutMs} ms` : 'off'}${hung}`);
    }
    if (sup.lastKnownGood) lines.push(formatBuilds(sup.lastKnownGood));
  }
  lines.push(`listening   ${s.listen.map((l) => l.url).join(', ')}`);
  lines.push(`connections ${s.connections}; messages in ${s.messages.in}, out ${s.messages.out}`);
  // issue 15: one line per outbound link.
  for (const l of s.links ?? []) {
    lines.push(`link        ${l.name} ${l.url}: ${l.phase}, ${l.reconnects} reconnects, in ${l.bytesIn} B / ${l.messagesIn} msgs, out ${l.bytesOut} B / ${l.messagesOut} msgs, queued ${l.queued}${l.framingErrors ? `, ${l.framingErrors} refused frames` : ''}`);
  }
  const ck = s.checkpoint;
  if (ck) {
    const last = ck.last ? `, last ${ck.last.bytes} bytes at ${new Date(ck.last.at).toISOString()} (${ck.last.trigger})` : '';
    const failed = ck.lastError ? `, ${ck.failures} failed (latest ${ck.lastError.code})` : '';
    const restore = ck.restore ? ('code' in ck.restore ? `; start refused the checkpoint: ${ck.restore.code}` : `; started from the checkpoint of ${ck.restore.version}`) : '';
    lines.push(`checkpoint  ${ck.dir}: ${ck.writes} written${last}${failed}${restore}`);
  }
  lines.push('versions');
  for (const v of s.versions) {
    const err = v.lastError ? `  last error ${v.lastError.code}` : '';
    lines.push(`  #${v.seq} ${v.name}@${v.version} ${v.hash}: ${v.messages} messages, ${v.errors} errors${err}`);
  }
  lines.push('swaps');
  for (const r of s.swaps.slice(-10)) {
    const phases = Object.entries(r.durations)
      .map(([k, ms]) => `${k} ${ms}`)
      .join(', ');
    const outcome =
      r.outcome === 'switched' ? `switched to ${r.to}` : r.outcome === 'unchanged' ? `unchanged (${r.to})` : `aborted in ${r.phase}: ${r.error?.code} ${r.error?.message ?? ''}`;
    lines.push(`  ${r.startedAt} ${r.trigger.padEnd(9)} ${outcome} (${r.totalMs} ms: ${phases})`);
  }
  return lines.join('\n') + '\n';
}
