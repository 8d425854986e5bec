/**
 * feed-gateway: relays a TCP feed of lines to every WebSocket client, through a link (issue 15). The link belongs to
 * the host, so editing this file swaps the code without reconnecting the feed or losing a line.
 *
 *   node examples/feed-gateway/feed-server.mjs 7000 &
 *   npx hotline dev examples/feed-gateway/plugin.ts --port 8080
 */
import { definePlugin, type PluginContext } from 'hotline';

const FEED = { url: process.env.FEED_URL ?? 'tcp://127.0.0.1:7000', framing: 'lines' as const };

interface Gateway {
  relayed: number;
}

interface FeedState {
  /** The last sequence number seen, so a reconnect can ask the feed to resume after it. */
  last: number;
}

function openFeed(ctx: PluginContext<Gateway>): void {
  ctx.link<FeedState>('feed', FEED);
}

export default definePlugin<Gateway>({
  name: 'feed-gateway',
  version: '1.0.0',
  api: 1,
  init(ctx) {
    openFeed(ctx);
    return { relayed: 0 };
  },
  migrate(prev, ctx) {
    // Asking for the link again, with the same options, is what keeps it open across the swap.
    openFeed(ctx);
    return prev.state as Gateway;
  },
  onLinkOpen(link) {
    link.state ??= { last: -1 };
  },
  onLinkReconnect(link) {
    // The hello: runs before the sends queued while the feed was down.
    const { last } = link.state as FeedState;
    link.send(`resume ${last + 1}`);
  },
  onLinkMessage(link, data, ctx) {
    const line = String(data);
    const seq = Number(line.split(' ', 1)[0]);
    if (Number.isInteger(seq)) (link.state as FeedState).last = seq;
    ctx.state.relayed++;
    ctx.broadcast(line);
  },
  onLinkClose(link, info, ctx) {
    ctx.log.warn({ reason: info.reason, code: info.code }, `feed ${link.name} down; reconnecting: ${info.willReconnect}`);
  },
  onMessage(conn, data, ctx) {
    if (String(data) === 'stats') conn.send(JSON.stringify({ relayed: ctx.state.relayed }));
  },
});
