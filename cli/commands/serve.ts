import type { Command } from 'commander';
import { KilnError } from '../../oci/errors.js';
import type { AdmissionHook } from '../../registry/context.js';
import { addFormatFlag } from '../common.js';
import { outputSettings, printJson, printMessage, printWarning } from '../output.js';

interface ServeFlags {
  addr?: string;
  data?: string;
  config?: string;
  insecureNoAuth?: boolean;
  requireSignatures?: string;
  requireSignaturesByDigest?: boolean;
  registryName?: string;
  format: string;
}

/** `kiln serve`: the OCI registry in the foreground until SIGTERM or SIGINT. */
export function registerServe(program: Command): void {
  const cmd = program
    .command('serve')
    .description('run a private OCI registry (OCI Distribution Spec v1.1) until SIGTERM or Ctrl-C')
    .option('--addr <host:port>', 'address to listen on; port 0 picks a free port (default 127.0.0.1:5000)')
    .option('--data <dir>', 'data directory: metadata.sqlite, blobs/, uploads/ (default ./kiln-data)')
    .option('--config <file>', 'YAML configuration using CNCF Distribution key names')
    .option('--insecure-no-auth', 'serve a non-loopback address without authentication (anyone may push and delete)')
    .option('--require-signatures <policy.json>', 'serve a manifest pulled by tag only when this containers-policy.json accepts it (see below)')
    .option('--require-signatures-by-digest', 'with --require-signatures, enforce the policy on pulls by digest too')
    .option('--registry-name <host[:port]>', 'the name clients use for this registry, as signatures and policy scopes name it (default: the address served)');
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
  auth.htpasswd.{realm,path}                  users, bcrypt only (htpasswd -B); re-read when changed
  auth.token.{issuer,service,realm,expiration}
                                              Bearer tokens from GET /token (ES256, DATA/token-key.pem)
  access: [{repository, users, groups, actions, anonymous}]
                                              the first rule matching the repository and naming the
                                              caller decides; * is one path segment, ** any; no rule,
                                              no access
  groups: {NAME: [user, ...]}                 groups for access rules
  policies: [{repository, immutableTags, quota}]
                                              first matching rule applies; quota (500MB, 1GiB) is per
                                              repository
  rateLimit.{requestsPerSecond,burst}         per client address and per user (429 + Retry-After)
  gc.interval                                 online garbage collection every DURATION (default off)
  gc.gracePeriod                              unreferenced data younger than this is kept (default 1h)
  retention: [{repository, keepLast, deleteUntaggedAfter}]   applied by every garbage collection
  log.accesslog.disabled                      true: no access log lines on stdout
Unknown keys are warned about and ignored, so a CNCF Distribution config.yml loads; http.tls is
refused (not implemented). Without an auth section only loopback addresses are served, unless
--insecure-no-auth is given.

Signature enforcement (--require-signatures policy.json, the policy format of kiln verify --policy):
a GET or HEAD of a manifest by tag is answered 403 DENIED, naming the policy and the failed check, unless
the policy accepts REGISTRY-NAME/REPOSITORY:TAG — for a sigstoreSigned scope: signed by a trusted key, and
the tag bound to this digest in the repository's newest signed tag state (kiln sign). Scopes the policy
leaves to insecureAcceptAnything are served as usual. Pulls by digest are checked only with
--require-signatures-by-digest. Pushes are never refused by it, and signature artifacts (.sig manifests,
bundle referrers, kiln-tag-state) are always served. Tag-state versions seen are remembered while the
server runs, so a state rolled back after being seen is refused.

Prints "listening on http://HOST:PORT" on stderr (with --format json, {"url","data"} on stdout).
Access logs are JSON lines on stdout, one per request (time, method, path, route, repository,
status, bytesIn, bytesOut, durationMs, user, remote, userAgent); server logs are JSON on stderr.
GET /healthz (liveness), /readyz (database and storage; 503 while shutting down) and /metrics
(Prometheus) are served without authentication. SIGTERM/SIGINT: stop accepting, finish requests in
flight (10 s), exit 0. See also: kiln gc.

Examples:
  kiln serve
  kiln serve --addr 127.0.0.1:0 --data /tmp/registry
  kiln serve --require-signatures policy.json --registry-name registry.example:5000
  htpasswd -cB ./htpasswd alice && kiln serve --addr 0.0.0.0:5000 --config config.yml
  kiln copy oci:./out:1.0 localhost:5000/app:1.0`,
  );
  cmd.action(async (flags: ServeFlags) => {
    const settings = outputSettings({ format: flags.format });
    // The server's modules (express, sqlite3, pino, jose…) load only here: importing them up front would
    // cost every other kiln command ~0.3 s of start-up.
    const [{ default: pino }, { loadConfig }, { startServer }] = await Promise.all([
      import('pino'),
      import('../../registry/config.js'),
      import('../../registry/server.js'),
    ]);
    if (flags.requireSignaturesByDigest && flags.requireSignatures === undefined) {
      throw new KilnError('USAGE', '--require-signatures-by-digest needs --require-signatures POLICY');
    }
    let registryName = flags.registryName;
    let admit: AdmissionHook | undefined;
    if (flags.requireSignatures !== undefined) {
      const [{ signatureAdmission }, { loadPolicyFile }] = await Promise.all([import('../require-signatures.js'), import('../../signer/policy.js')]);
      const policy = await loadPolicyFile(flags.requireSignatures);
      admit = signatureAdmission({ policy, byDigest: flags.requireSignaturesByDigest === true, registryName: () => registryName });
    }
    const { config, warnings } = await loadConfig({ file: flags.config, env: process.env, flags: { addr: flags.addr, data: flags.data, insecureNoAuth: flags.insecureNoAuth } });
    for (const warning of warnings) printWarning(warning, settings);
    const logger = pino({ name: 'kiln-registry', level: config.logLevel }, pino.destination({ dest: 2, sync: true }));
    // Asynchronous: a request never waits for the terminal or the pipe reading stdout. Lines of one event-loop
    // turn are joined into one write (the writer's cost is per write, not per line). Should the reader stall,
    // lines beyond 16 MiB of backlog are dropped rather than held in memory.
    const stdout = pino.destination({ dest: 1, sync: false, maxLength: 16 * 1024 * 1024 });
    let batch: string[] = [];
    const flushBatch = (): void => {
      stdout.write(batch.join(''));
      batch = [];
    };
    const accessLog = (line: string): void => {
      if (batch.push(line) === 1) setImmediate(flushBatch);
    };
    const server = await startServer(config, { logger, signals: ['SIGTERM', 'SIGINT'], accessLog, admit });
    registryName ??= server.url.slice('http://'.length);
    if (settings.json) printJson({ url: server.url, data: server.data });
    printMessage(`listening on ${server.url} (data: ${server.data})`);
    await server.closed;
  });
}
