/**
 * How the chat renders things. This file is part of the plugin's import graph: edit it while `npm start` runs and
 * the server swaps to the new code with every tab still connected. Try changing `formatText` to
 *
 *   return `${text.toUpperCase()}!`;
 *
 * New messages come out in the new format; the history keeps the lines the old version wrote.
 */

/** How many chat lines the server keeps and replays to a newcomer. */
export const HISTORY_LIMIT = 100;

/** Longest accepted message and nickname, in characters. */
export const MAX_TEXT = 500;
export const MAX_NICK = 24;

/** The text of one chat message as everyone will see it. */
export function formatText(text: string): string {
  return text;
}

/** A nickname a client asked for, trimmed and bounded; `fallback` when nothing usable is left. */
export function cleanNick(raw: string, fallback: string): string {
  const nick = raw.replace(/\s+/g, ' ').trim().slice(0, MAX_NICK);
  return nick.length > 0 ? nick : fallback;
}
