/** The part of a pino logger the registry uses; the CLI injects a real one, tests may leave it out. */
export interface RegistryLogger {
  error(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

/** A logger that drops everything (the default of `createApp`). */
export const silentLogger: RegistryLogger = {
  error: () => undefined,
  warn: () => undefined,
  info: () => undefined,
  debug: () => undefined,
};
