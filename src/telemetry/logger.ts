/**
 * The logging hook. Its shape matches pino (`logger.warn({ err }, 'message')`), so a pino logger,
 * or a child of one, can be passed as is. Larder logs nothing unless one is given.
 */
export interface Logger {
  debug(context: object, message?: string): void;
  info(context: object, message?: string): void;
  warn(context: object, message?: string): void;
  error(context: object, message?: string): void;
}

const noop = (): void => {};

/** A logger that discards everything: the default. */
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };
