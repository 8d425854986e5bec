/**
 * A game room with a server-side clock: players move on a grid, the world advances every TICK_MS, and whoever
 * reaches the coin scores. It shows what a real-time plugin needs across swaps:
 *
 * - a recurring timer that belongs to one version and is started only once that version serves;
 * - world state (tick, players, coin) migrated, so nobody is teleported or loses points;
 * - per-connection state (which player this connection controls) migrated.
 *
 * Speaks JSON lines on any transport, so a terminal is enough:
 *   npx hotline dev examples/game-room/plugin.ts --transport tcp --port 9100
 *   socat - TCP:127.0.0.1:9100      then type: name ada, d, s, stop …
 *
 * client → server  one command per message: w a s d | up down left right | stop | name <nick>
 * server → client  {"t":"welcome","you","rules"}  then {"t":"state","tick","rules","coin","players":[…]} on change
 */
import { definePlugin, type PluginContext } from 'hotline';
import { type Coin, type Player, RULES, TICK_MS, WIDTH, HEIGHT, direction, placeCoin, reaches, step } from './rules.js';

interface World {
  tick: number;
  players: Record<string, Player>;
  coin: Coin;
  nextPlayer: number;
}

interface Seat {
  playerId: string;
}

type Ctx = PluginContext<World, Seat>;

// Module scope is per loaded version: each build evaluates this module afresh.
let clockRunning = false;

/** Start this version's clock. Called only once the version serves (from a handler, or just after the switch). */
function startClock(ctx: Ctx): void {
  if (clockRunning) return;
  clockRunning = true;
  ctx.setInterval(() => advance(ctx), TICK_MS);
}

function advance(ctx: Ctx): void {
  const w = ctx.state;
  w.tick++;
  let changed = false;
  for (const p of Object.values(w.players)) {
    const fromX = p.x;
    const fromY = p.y;
    if (!step(p)) continue;
    changed = true;
    if (reaches(p, w.coin, fromX, fromY)) {
      p.score++;
      w.coin = placeCoin(w.tick);
    }
  }
  if (changed) ctx.broadcast(snapshot(w));
}

function snapshot(w: World): string {
  return JSON.stringify({ t: 'state', tick: w.tick, rules: RULES, coin: w.coin, players: Object.values(w.players) });
}

export default definePlugin<World, Seat>({
  name: 'game-room',
  version: '1.0.0',
  api: 1,

  init: () => ({ tick: 0, players: {}, coin: placeCoin(0), nextPlayer: 1 }),

  migrate(prev, ctx) {
    const p = (prev.state ?? {}) as Partial<World>;
    const players: Record<string, Player> = {};
    // Copy, never mutate prev.state: if this swap aborts, the old version keeps serving on it. Clamp to the new
    // world's bounds, in case WIDTH or HEIGHT shrank.
    for (const [id, pl] of Object.entries(p.players ?? {})) {
      players[id] = { ...pl, x: Math.min(pl.x, WIDTH - 1), y: Math.min(pl.y, HEIGHT - 1) };
    }
    // Fires after the switch; cleared with this version if the swap aborts.
    ctx.setTimeout(() => startClock(ctx), 0);
    return { tick: p.tick ?? 0, players, coin: p.coin ?? placeCoin(0), nextPlayer: p.nextPlayer ?? 1 };
  },

  migrateConnection: (prev) => prev as Seat,

  onOpen(conn, ctx) {
    startClock(ctx);
    const w = ctx.state;
    const id = `p${w.nextPlayer++}`;
    w.players[id] = { name: id, x: 0, y: 0, dx: 0, dy: 0, score: 0 };
    conn.state = { playerId: id };
    conn.send(JSON.stringify({ t: 'welcome', you: id, rules: RULES }));
    ctx.broadcast(snapshot(w));
  },

  onMessage(conn, data, ctx) {
    startClock(ctx);
    const player = ctx.state.players[conn.state.playerId];
    if (!player || typeof data !== 'string') return;
    const command = data.trim().toLowerCase();
    if (command.startsWith('name ')) {
      player.name = data.trim().slice(5).slice(0, 16) || player.name;
      ctx.broadcast(snapshot(ctx.state));
      return;
    }
    const dir = direction(command);
    if (dir) [player.dx, player.dy] = dir;
  },

  onClose(conn, _info, ctx) {
    const id = conn.state?.playerId;
    if (id === undefined) return;
    delete ctx.state.players[id];
    ctx.broadcast(snapshot(ctx.state));
  },
});
