/**
 * The `npm start` demo: a chat room whose code you can change while people are talking.
 *
 * - Global state: a bounded history of chat lines, carried to every new version by `migrate`. Plain data only (no
 *   Map, class or function), so it also survives a crash: `hotline start --sessions` checkpoints it and a restarted
 *   worker gets it back through the same `migrate`, with `prev.restoredAt` set.
 * - Per-connection state: the nickname, carried by `migrateConnection`.
 * - Every line records the plugin version and "generation" (how many builds this state has been through), so the page
 *   shows which code produced it.
 *
 * Protocol (JSON text frames):
 *   client → server  {"type":"say","text":"hi"}  |  {"type":"nick","nick":"ada"}  |  any other text = say it
 *   server → client  {"type":"hello","you","version","generation","online","history":[Line]}
 *                    {"type":"line","line":Line}     (a chat message or a system notice)
 *                    {"type":"nick","you"}            (your nickname changed)
 */
import { definePlugin, type PluginContext } from 'hotline';
import { HISTORY_LIMIT, MAX_TEXT, cleanNick, formatText, restoreNotice, updateNotice } from './format.js';

/** One line of the chat, as stored in the history and sent to clients. */
export interface Line {
  id: number;
  /** Epoch ms. */
  at: number;
  /** The author's nickname; absent for a system notice. */
  nick?: string;
  text: string;
  /** The plugin version and build generation that wrote this line. */
  version: string;
  generation: number;
}

interface ChatState {
  history: Line[];
  nextLineId: number;
  guests: number;
  /** 1 for the first build, +1 for each version the state migrates into (upgrades and rollbacks alike). */
  generation: number;
}

interface ConnState {
  nick: string;
}

type Ctx = PluginContext<ChatState, ConnState>;

function record(ctx: Ctx, nick: string | undefined, text: string): void {
  const s = ctx.state;
  const line: Line = { id: s.nextLineId++, at: Date.now(), text, version: ctx.version, generation: s.generation };
  if (nick !== undefined) line.nick = nick;
  s.history.push(line);
  // Bounded: a chat that runs for weeks must not grow the heap (or the migrate payload) without limit.
  if (s.history.length > HISTORY_LIMIT) s.history.splice(0, s.history.length - HISTORY_LIMIT);
  // Everyone here chats, so a broadcast; a session restored from the store after a restart is in no room yet (rooms
  // are carried by swaps, resumes in this process and upgrades, not by the session store), so not ctx.to(room).
  ctx.broadcast(JSON.stringify({ type: 'line', line }));
}

function online(ctx: Ctx): number {
  let n = 0;
  for (const _ of ctx.connections) n++;
  return n;
}

/** A history line as migrate takes it: a checkpoint read back from disk is input like any other. */
function isLine(l: unknown): l is Line {
  const x = l as Partial<Line> | null;
  return typeof x === 'object' && x !== null && typeof x.id === 'number' && typeof x.at === 'number' && typeof x.text === 'string' &&
    typeof x.version === 'string' && typeof x.generation === 'number' && (x.nick === undefined || typeof x.nick === 'string');
}

function count(v: unknown): number | undefined {
  return Number.isSafeInteger(v) && (v as number) >= 0 ? (v as number) : undefined;
}

function parse(data: string): { type: string; text?: unknown; nick?: unknown } {
  try {
    const msg: unknown = JSON.parse(data);
    if (msg && typeof msg === 'object' && typeof (msg as { type?: unknown }).type === 'string') {
      return msg as { type: string };
    }
  } catch {
    // Not JSON: a plain-text client (wscat, nc) is just talking.
  }
  return { type: 'say', text: data };
}

export default definePlugin<ChatState, ConnState>({
  name: 'chat',
  version: '1.0.0',
  api: 1,

  init: () => ({ history: [], nextLineId: 1, guests: 0, generation: 1 }),

  migrate(prev, ctx) {
    // Accept any earlier (or later, on rollback) shape: take what is there, default the rest.
    const p = (prev.state ?? {}) as Partial<ChatState>;
    const history = Array.isArray(p.history) ? p.history.filter(isLine).slice(-HISTORY_LIMIT) : [];
    const state: ChatState = {
      history,
      nextLineId: count(p.nextLineId) ?? (history.at(-1)?.id ?? 0) + 1,
      guests: count(p.guests) ?? 0,
      generation: (count(p.generation) ?? 0) + 1,
    };
    // Announce once this version is live. A tracked timer: if the swap aborts after migrate, the host clears it with
    // the rejected version, so no notice is ever sent for code that never served.
    const notice = prev.restoredAt !== undefined ? restoreNotice(ctx.version, prev.restoredAt) : updateNotice(prev.version, ctx.version, state.generation);
    ctx.setTimeout(() => record(ctx, undefined, notice), 0);
    return state;
  },

  migrateConnection(prevConnState) {
    const prev = (prevConnState ?? {}) as Partial<ConnState>;
    return { nick: typeof prev.nick === 'string' ? prev.nick : 'guest' };
  },

  onOpen(conn, ctx) {
    const nick = `guest-${++ctx.state.guests}`;
    conn.state = { nick };
    const s = ctx.state;
    conn.send(JSON.stringify({ type: 'hello', you: nick, version: ctx.version, generation: s.generation, online: online(ctx), history: s.history }));
    record(ctx, undefined, `${nick} joined`);
  },

  onMessage(conn, data, ctx) {
    if (typeof data !== 'string') return;
    const msg = parse(data);
    if (msg.type === 'nick' && typeof msg.nick === 'string') {
      const before = conn.state.nick;
      const nick = cleanNick(msg.nick, before);
      if (nick === before) return;
      conn.state.nick = nick;
      conn.send(JSON.stringify({ type: 'nick', you: nick }));
      record(ctx, undefined, `${before} is now ${nick}`);
    } else if (msg.type === 'say' && typeof msg.text === 'string') {
      const text = msg.text.trim().slice(0, MAX_TEXT);
      if (text.length > 0) record(ctx, conn.state.nick, formatText(text));
    }
  },

  onClose(conn, _info, ctx) {
    // A connection closed before onOpen ran has no state.
    record(ctx, undefined, `${conn.state?.nick ?? 'someone'} left`);
  },
});
