import type { Command } from 'commander';
import pino from 'pino';
import { loadConfig } from '../../registry/config.js';
import { startServer } from '../../registry/server.js';
import { addFormatFlag } from '../common.js';
import { outputSettings, printJson, printMessage, printWarning } from '../output.js';

interface ServeFlags {
  addr?: string;
  data?: string;
  config?: string;
  format: string;
}

/** `kiln serve`: the OCI registry in the foreground until SIGTERM or SIGINT. */
export function registerServe(program: Command): void {
  const cmd = program
    .command('serve')
    .description('run a private OCI registry (OCI Distribution Spec v1.1) until SIGTERM or Ctrl-C')
    .option('--addr <host:port>', 'address to listen on; port 0 picks a free port (default 127.0.0.1:5000)')
    .option('--data <dir>', 'data directory: metadata.sqlite, blobs/, uploads/ (default ./kiln-data)')
    .option('--config <file>', 'YAML configuration using CNCF Distribution key names');
  addFormatFlag(cmd);
  cmd.addHelpText(
    'after',
    `
Configuration, weakest first: defaults, --config FILE, environment, flags.
  http.addr                                   REGISTRY_HTTP_ADDR                           --addr
  storage.filesystem.rootdirectory            REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY    --data
  log.level (error|warn|info|debug)           REGISTRY_LOG_LEVEL
  storage.maintenance.uploadpurging.age       (default 24h: idle uploads are purged)
  storage.maintenance.uploadpurging.interval  (default 1h)
Unknown keys are warned about and ignored, so a CNCF Distribution config.yml loads; auth and
http.tls sections are refused (not implemented yet), and only loopback addresses are served.

Prints "listening on http://HOST:PORT" on stderr (with --format json, {"url","data"} on stdout);
logs are JSON lines on stderr.

Examples:
  kiln serve
  kiln serve --addr 127.0.0.1:0 --data /tmp/registry
  kiln copy oci:./out:1.0 localhost:5000/app:1.0`,
  );
  cmd.action(async (flags: ServeFlags) => {
    const settings = outputSettings({ format: flags.format });
    const { config, warnings } = await loadConfig({ file: flags.config, env: process.env, flags: { addr: flags.addr, data: flags.data } });
    for (const warning of warnings) printWarning(warning, settings);
    const logger = pino({ name: 'kiln-registry', level: config.logLevel }, pino.destination({ dest: 2, sync: true }));
    const server = await startServer(config, { logger, signals: ['SIGTERM', 'SIGINT'] });
    if (settings.json) printJson({ url: server.url, data: server.data });
    printMessage(`listening on ${server.url} (data: ${server.data})`);
    await server.closed;
  });
}
