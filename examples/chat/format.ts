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

/**
 * The notice the chat posts when a restarted server (a crash, kill -9, a watchdog restart) came back from the
 * checkpoint of its state (`hotline start --sessions`): what was said after that checkpoint is gone.
 */
export function restoreNotice(toVersion: string, writtenAt: number): string {
  return `server restarted on v${toVersion}: history and nicknames restored from the checkpoint of ${new Date(writtenAt).toISOString()}`;
}

/**
 * The notice the chat posts when new server code goes live. Editing the plugin without bumping `version` is the usual
 * case in this demo, so "v1.0.0 (was v1.0.0)" said nothing: this names what changed (the code, or the version) and
 * what the swap kept, which is the point of the demo.
 */
export function updateNotice(fromVersion: string, toVersion: string, build: number): string {
  const what = fromVersion === toVersion ? `new code for v${toVersion}` : `v${fromVersion} → v${toVersion}`;
  return `server updated live: ${what} (build ${build}); no one was disconnected, history and nicknames kept`;
}
