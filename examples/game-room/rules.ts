/**
 * The game's rules. Part of the plugin's import graph: change SPEED or RULES while players are moving and the room
 * keeps going under the new rules, with every position, score and connection intact.
 */

/** Shown in every snapshot, so a client sees which rules produced it. Bump it when you edit this file. */
export const RULES = 'classic-1';

/** Cells a moving player advances per tick. */
export const SPEED = 1;

/** How often the world advances, in ms. */
export const TICK_MS = 100;

/** The world is a WIDTH × HEIGHT grid; players stay inside it. */
export const WIDTH = 40;
export const HEIGHT = 20;

export interface Player {
  name: string;
  x: number;
  y: number;
  dx: number;
  dy: number;
  score: number;
}

export interface Coin {
  x: number;
  y: number;
}

/** Direction for a command: w a s d, or up left down right. */
export function direction(command: string): [number, number] | undefined {
  switch (command) {
    case 'w':
    case 'up':
      return [0, -1];
    case 's':
    case 'down':
      return [0, 1];
    case 'a':
    case 'left':
      return [-1, 0];
    case 'd':
    case 'right':
      return [1, 0];
    case 'stop':
      return [0, 0];
    default:
      return undefined;
  }
}

const clamp = (v: number, max: number) => Math.min(Math.max(v, 0), max - 1);

/** Move a player one tick. Returns true if it moved. */
export function step(p: Player): boolean {
  const x = clamp(p.x + p.dx * SPEED, WIDTH);
  const y = clamp(p.y + p.dy * SPEED, HEIGHT);
  if (x === p.x && y === p.y) return false;
  p.x = x;
  p.y = y;
  return true;
}

/** A player picks up the coin by passing over its cell or landing on it. */
export function reaches(p: Player, coin: Coin, fromX: number, fromY: number): boolean {
  const minX = Math.min(fromX, p.x);
  const maxX = Math.max(fromX, p.x);
  const minY = Math.min(fromY, p.y);
  const maxY = Math.max(fromY, p.y);
  return coin.x >= minX && coin.x <= maxX && coin.y >= minY && coin.y <= maxY;
}

/** Where the next coin goes: deterministic from the tick, so replays and tests are reproducible. */
export function placeCoin(tick: number): Coin {
  return { x: (tick * 7 + 3) % WIDTH, y: (tick * 5 + 1) % HEIGHT };
}
