/**
 * The minimal plugin: echoes every message back, and counts messages globally and per connection. Used by tests
 * and scripts; edit the reply prefix while clients are connected to watch a swap.
 */
import { definePlugin } from 'hotline';

interface Global {
  messages: number;
}

interface PerConn {
  seen: number;
}

export default definePlugin<Global, PerConn>({
  name: 'echo',
  version: '1.0.0',
  api: 1,
  init: () => ({ messages: 0 }),
  migrate: (prev) => prev.state as Global,
  onOpen(conn) {
    conn.state = { seen: 0 };
  },
  onMessage(conn, data, ctx) {
    ctx.state.messages++;
    conn.state.seen++;
    conn.send(data);
  },
});
