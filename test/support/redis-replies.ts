/** Readers of raw RESP replies from `TestRedisServer.command()`. */

/** Calls of one command in an `INFO commandstats` reply. */
export function commandCalls(info: string, command: string): number {
  const match = new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(info);
  return match ? Number(match[1]) : 0;
}

/** The integer of a RESP `:n` reply. */
export function integerReply(reply: string): number {
  return Number(reply.slice(1).trim());
}
