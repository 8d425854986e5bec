/**
 * The TCP sockets a process and its descendants hold in the LISTEN state, read from /proc (Linux): what `ss -ltnp`
 * shows for them. A test uses it to prove that nothing of a process listens anywhere but where it was asked to.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

export interface ListeningSocket {
  pid: number;
  address: string;
  port: number;
}

/** `pid` and every process below it (through /proc/<pid>/task/<tid>/children). */
export function processTree(pid: number): number[] {
  const out: number[] = [];
  const visit = (p: number) => {
    out.push(p);
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${p}/task`);
    } catch {
      return; // gone meanwhile
    }
    for (const tid of tasks) {
      let children = '';
      try {
        children = readFileSync(`/proc/${p}/task/${tid}/children`, 'utf8');
      } catch {
        continue;
      }
      for (const c of children.split(/\s+/).filter(Boolean)) visit(Number(c));
    }
  };
  visit(pid);
  return out;
}

/** The LISTEN sockets held by `pid` or its descendants. */
export function listeningSockets(pid: number): ListeningSocket[] {
  const listening = new Map<string, { address: string; port: number }>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
      if (f.length < 10 || f[3] !== '0A') continue;
      const [hex, portHex] = f[1]!.split(':') as [string, string];
      listening.set(f[9]!, { address: decodeAddress(hex), port: parseInt(portHex, 16) });
    }
  }
  const out: ListeningSocket[] = [];
  for (const p of processTree(pid)) {
    let fds: string[] = [];
    try {
      fds = readdirSync(`/proc/${p}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let target = '';
      try {
        target = readlinkSync(`/proc/${p}/fd/${fd}`);
      } catch {
        continue;
      }
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      const s = inode && listening.get(inode);
      if (s && !out.some((o) => o.pid === p && o.port === s.port && o.address === s.address)) out.push({ pid: p, ...s });
    }
  }
  return out;
}

/** /proc/net/tcp writes addresses as little-endian 32-bit words in hex. */
function decodeAddress(hex: string): string {
  const words = hex.match(/.{8}/g) ?? [];
  const bytes = words.flatMap((w) => (w.match(/../g) ?? []).reverse().map((b) => parseInt(b, 16)));
  if (bytes.length === 4) return bytes.join('.');
  if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) return `::ffff:${bytes.slice(12).join('.')}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return groups.join(':').replace(/(^|:)0(:0)+(:|$)/, '::');
}
