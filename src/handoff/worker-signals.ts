/**
 * A worker obeys its supervisor's IPC, never a signal (issue 10). A terminal's Ctrl-C signals the whole foreground
 * process group, and systemd's KillMode=control-group, `systemctl kill` and a `kill -TERM -<pgid>` signal every
 * process of the unit: a worker that died of them cut its clients (1006) instead of the graceful stop (1012, the
 * send-away) the supervisor runs for the same signal, and an old worker killed by SIGUSR2 aborted the upgrade it was
 * meant to take part in. So these four are ignored here, where they would otherwise end or confuse the process.
 *
 * Imported first by worker-main.ts, before the host's modules load, so that the window in which a signal still
 * kills a starting worker is as short as Node's own startup. The supervisor also forks its workers into a process
 * group of their own (worker-process.ts), so a terminal's signals do not even reach them; and a worker whose
 * supervisor is gone exits (worker.ts, on `disconnect`), so ignoring signals never leaves an orphan.
 */
export const WORKER_IGNORED_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGUSR2'] as const;

function ignore(): void {
  // Deliberately nothing: the supervisor got the same signal and sends the worker what to do over IPC.
}

for (const signal of WORKER_IGNORED_SIGNALS) process.on(signal, ignore);
