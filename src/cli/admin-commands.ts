/**
 * `hotline reload`, `rollback`, `promote` and `status`: one request each over the admin socket.
 */
import { formatPresence } from './presence-status.js';
import { adminRequest } from '../admin/admin-client.js';
import { defaultAdminPath } from '../admin/protocol.js';
import { HotlineError } from '../errors.js';
import type { HostStatus } from '../host/host.js';
import type { SwapRecord } from '../swap/history.js';

/** Flags of the reload policy (issue 12). */
export interface PolicyFlags {
  pin?: boolean;
  'max-age'?: string;
  canary?: string;
  window?: string;
}

const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

/** `10m`, `30s`, `500ms`, `2h`, or a plain number of ms. HOTLINE_E_POLICY otherwise. */
export function parseDuration(flag: string, text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new HotlineError('HOTLINE_E_POLICY', `--${flag} takes a duration like 10m, 30s or 500ms, got ${JSON.stringify(text.slice(0, 32))}`);
  return Math.round(Number(m[1]) * UNITS[m[2] ?? 'ms']!);
}

/** The policy the flags ask for, as sent on the admin socket (validated again there, by parsePolicy). */
export function policyFromFlags(cmd: string, f: PolicyFlags): unknown {
  const any = f.pin === true || f['max-age'] !== undefined || f.canary !== undefined || f.window !== undefined;
  if (!any) return undefined;
  if (cmd !== 'reload') throw new HotlineError('HOTLINE_E_POLICY', '--pin, --max-age, --canary and --window belong to `hotline reload` only');
  if (f.pin === true && f.canary !== undefined) throw new HotlineError('HOTLINE_E_POLICY', '--pin and --canary exclude each other');
  if (f.canary !== undefined) {
    if (f['max-age'] !== undefined) throw new HotlineError('HOTLINE_E_POLICY', '--max-age goes with --pin');
    const m = /^(\d+(?:\.\d+)?)%$/.exec(f.canary.trim());
    const share = m ? Number(m[1]) / 100 : Number.NaN;
    if (!(share > 0 && share <= 1)) throw new HotlineError('HOTLINE_E_POLICY', `--canary takes a share like 10%, in (0%, 100%], got ${JSON.stringify(f.canary.slice(0, 32))}`);
    return { canary: share, ...(f.window !== undefined && { window: parseDuration('window', f.window) }) };
  }
  if (f.pin !== true) throw new HotlineError('HOTLINE_E_POLICY', '--max-age goes with --pin, --window with --canary');
  if (f.window !== undefined) throw new HotlineError('HOTLINE_E_POLICY', '--window goes with --canary');
  return f['max-age'] !== undefined ? { pin: true, maxAge: parseDuration('max-age', f['max-age']) } : 'pin';
}

export async function runAdminCommand(
  cmd: 'reload' | 'rollback' | 'status' | 'promote',
  flags: { admin?: string; json?: boolean; force?: boolean } & PolicyFlags,
): Promise<number> {
  const socket = flags.admin ?? defaultAdminPath();
  const policy = policyFromFlags(cmd, flags);
  const result = await adminRequest(socket, cmd, 60_000, { force: cmd === 'reload' && flags.force === true, ...(policy !== undefined && { policy }) });
  if (cmd === 'status') {
    process.stdout.write(flags.json ? JSON.stringify(result, null, 2) + '\n' : formatStatus(result as HostStatus));
    return 0;
  }
  const record = result as SwapRecord;
  if (flags.json) process.stdout.write(JSON.stringify(record) + '\n');
  else if (record.outcome === 'unchanged') process.stdout.write(`unchanged: still serving ${record.to} (hash ${record.hash}); --force loads it again\n`);
  else if (record.outcome === 'pinned') process.stdout.write(`pinned: new connections get ${record.to} (hash ${record.hash}); open ones stay on ${record.from}\n`);
  else if (record.outcome === 'canary') process.stdout.write(`canary: ${record.to} (hash ${record.hash}) takes a share of new connections beside ${record.from}\n`);
  else if (record.outcome === 'promoted' || record.outcome === 'rolled-back') process.stdout.write(`${record.outcome}: connections of ${record.from} moved to ${record.to} (${record.totalMs} ms)\n`);
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
    lines.push(`link        ${l.name} ${l.url}: ${l.phase}, ${l.reconnects} reconnects, in ${l.bytesIn} B / ${l.messagesIn} msgs, out ${l.bytesOut} B / ${l.messagesOut} msgs, queued ${l.queued}${l.framingErrors ? `, ${l.framingErrors} refused frames` : ''}${l.upgradesMoved ? `, moved by ${l.upgradesMoved} upgrades` : ''}`);
  }
  // issue 13: the cluster bus, then the rooms with members here (the largest first).
  const cl = s.cluster;
  if (cl) {
    const buffered = cl.whileDown === 'buffer' ? `, buffered ${cl.buffered} now (${cl.bufferedTotal} since start)` : '';
    const refused = cl.refused['too-large'] + cl.refused.malformed;
    lines.push(`cluster     ${cl.name}: NATS ${cl.state} (${cl.servers.join(', ')}), node ${cl.node}, ${cl.subscriptions} room subscriptions, ${cl.disconnects} disconnects`);
    lines.push(`            published ${cl.published}${buffered}, dropped ${cl.dropped}, refused by NATS ${cl.refusedPublishes}; received ${cl.received} (delivered ${cl.delivered}), missed ${cl.missed} in ${cl.gaps} gaps, duplicates ${cl.duplicates}, refused ${refused}`);
  }
  if (s.rooms && s.rooms.count > 0) {
    // A room name comes from clients: quoted unless plain printable ASCII, so it cannot write to the terminal.
    const shown = s.rooms.largest.slice(0, 10).map((r) => `${/^[\x21-\x7e]{1,64}$/.test(r.room) ? r.room : JSON.stringify(r.room.slice(0, 64))} ${r.members}`);
    const more = s.rooms.count > shown.length ? `, … ${s.rooms.count - shown.length} more` : '';
    lines.push(`rooms       ${s.rooms.count} with members here: ${shown.join(', ')}${more}`);
  }
  // issue 13: presence across nodes (src/cli/presence-status.ts).
  if (s.presence) lines.push(...formatPresence(s.presence));
  const ck = s.checkpoint;
  if (ck) {
    const last = ck.last ? `, last ${ck.last.bytes} bytes at ${new Date(ck.last.at).toISOString()} (${ck.last.trigger})` : '';
    const failed = ck.lastError ? `, ${ck.failures} failed (latest ${ck.lastError.code})` : '';
    const restore = ck.restore ? ('code' in ck.restore ? `; start refused the checkpoint: ${ck.restore.code}` : `; started from the checkpoint of ${ck.restore.version}`) : '';
    lines.push(`checkpoint  ${ck.dir}: ${ck.writes} written${last}${failed}${restore}`);
  }
  if (s.live && s.live.length > 0) {
    // issue 12: every live version; `*` marks the default for new connections.
    lines.push('live');
    for (const l of s.live) {
      const p99 = l.p99Ms !== undefined ? `, handler p99 ${l.p99Ms} ms` : '';
      const age = l.maxAgeMs !== undefined ? `, max age ${Math.round(l.maxAgeMs / 1000)} s` : '';
      const c = l.canary ? `, share ${(l.canary.share * 100).toFixed(0)}%, window ${Math.round(l.canary.windowMs / 1000)} s, stable error rate ${(l.canary.stableErrorRate * 100).toFixed(1)}%` : '';
      lines.push(`  ${l.role === 'default' ? '*' : ' '} #${l.seq} ${l.label} ${l.role}: ${l.connections} connections, ${l.messages} messages, error rate ${(l.errorRate * 100).toFixed(1)}%${p99}${age}${c}`);
    }
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
