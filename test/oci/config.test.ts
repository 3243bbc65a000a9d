import { describe, expect, it } from 'vitest';
import { parseImageConfig } from '../../oci/config.js';
import { digestOf } from '../../oci/digest.js';
import { thrown } from '../support/errors.js';

const bytesOf = (doc: unknown): Buffer => Buffer.from(JSON.stringify(doc));
const diffIds = [digestOf('layer0'), digestOf('layer1')];

/** Shaped after the image-spec config.md example. */
const ociConfig = {
  created: '2015-10-31T22:22:56.015925234Z',
  author: 'Alyssa P. Hacker <alyspdev@example.com>',
  architecture: 'amd64',
  os: 'linux',
  config: {
    User: 'alice',
    ExposedPorts: { '8080/tcp': {} },
    Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'FOO=oci_is_a'],
    Entrypoint: ['/bin/my-app-binary'],
    Cmd: ['--foreground', '--config', '/etc/my-app.d/default.cfg'],
    Volumes: { '/var/job-result-data': {}, '/var/log/my-app-logs': {} },
    WorkingDir: '/home/alice',
    Labels: { 'com.example.project.git.url': 'https://example.com/project.git' },
    StopSignal: 'SIGRTMIN+3',
  },
  rootfs: { type: 'layers', diff_ids: diffIds },
  history: [
    { created: '2015-10-31T22:22:54.690851953Z', created_by: '/bin/sh -c #(nop) ADD file:a3bc1e842b69636f9df5256c49c5374fb4eef1e281fe3f282c65fb853ee171c5 in /' },
    { created: '2015-10-31T22:22:55.613815829Z', created_by: '/bin/sh -c #(nop) CMD ["sh"]', empty_layer: true },
    { created: '2015-10-31T22:22:56+01:00', created_by: '/bin/sh -c apk add curl', author: 'alice', comment: 'x' },
  ],
};

/** Shaped after what `docker build` writes: Go nulls, legacy fields, a healthcheck. */
const dockerConfig = {
  architecture: 'arm64',
  variant: 'v8',
  os: 'linux',
  created: '2024-01-31T12:00:00Z',
  docker_version: '24.0.7',
  container_config: { Hostname: '', Cmd: null },
  config: {
    Hostname: '',
    Env: ['PATH=/bin'],
    Cmd: null,
    Entrypoint: null,
    Volumes: null,
    OnBuild: null,
    Labels: null,
    ArgsEscaped: true,
    Shell: ['/bin/sh', '-c'],
    Healthcheck: { Test: ['CMD-SHELL', 'curl -f http://localhost/'], Interval: 30_000_000_000, Retries: 3 },
  },
  rootfs: { type: 'layers', diff_ids: [diffIds[0]] },
  history: null,
};

describe('parseImageConfig: valid configs', () => {
  it('reads an OCI config', () => {
    const config = parseImageConfig(bytesOf(ociConfig));
    expect(config).toEqual(ociConfig);
    expect(config.rootfs.diff_ids).toEqual(diffIds);
    expect(config.config?.Labels?.['com.example.project.git.url']).toBe('https://example.com/project.git');
  });

  it('reads a Docker config: nulls count as absent (config.md § Properties), unknown fields are kept', () => {
    const config = parseImageConfig(bytesOf(dockerConfig));
    expect(config.config?.Cmd).toBeUndefined();
    expect(config.config && 'Cmd' in config.config).toBe(false);
    expect(config.config?.Labels).toBeUndefined();
    expect(config.history).toBeUndefined();
    expect(config.config?.Healthcheck?.Retries).toBe(3);
    expect((config as unknown as Record<string, unknown>).docker_version).toBe('24.0.7');
    expect((config.config as unknown as Record<string, unknown>).Hostname).toBe('');
    expect(config.variant).toBe('v8');
  });

  it('reads a minimal config with an empty rootfs', () => {
    expect(parseImageConfig(Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}')).rootfs.diff_ids).toEqual([]);
  });

  it('reads ExposedPorts entries that Go wrote as null as empty objects', () => {
    const config = parseImageConfig(bytesOf({ ...ociConfig, config: { ExposedPorts: { '80/tcp': null } } }));
    expect(config.config?.ExposedPorts).toEqual({ '80/tcp': {} });
  });
});

describe('parseImageConfig: invalid configs name the field', () => {
  it('names the field under the config digest by default', () => {
    const bytes = bytesOf({ ...ociConfig, rootfs: { type: 'layers', diff_ids: [diffIds[0], 'sha256:xyz'] } });
    const err = thrown(() => parseImageConfig(bytes));
    expect(err.code).toBe('VALIDATION');
    expect(err.message).toBe(`config ${digestOf(bytes)}: rootfs.diff_ids[1]: invalid digest "sha256:xyz"`);
  });

  it.each([
    ['architecture missing', { ...ociConfig, architecture: undefined }, 'cfg: architecture: required'],
    ['architecture null', { ...ociConfig, architecture: null }, 'cfg: architecture: required'],
    ['architecture empty', { ...ociConfig, architecture: '' }, 'cfg: architecture: required non-empty string, got ""'],
    ['os number', { ...ociConfig, os: 7 }, 'cfg: os: required non-empty string, got 7'],
    ['variant number', { ...ociConfig, variant: 8 }, 'cfg: variant: must be a string, got 8'],
    ['os.features', { ...ociConfig, 'os.features': 'win32k' }, 'cfg: os.features: must be an array of strings'],
    ['created not a date', { ...ociConfig, created: 'yesterday' }, 'cfg: created: must be an RFC 3339 date-time'],
    ['created month 13', { ...ociConfig, created: '2024-13-01T00:00:00Z' }, 'cfg: created: must be an RFC 3339'],
    ['created without zone', { ...ociConfig, created: '2024-01-01T00:00:00' }, 'cfg: created: must be an RFC 3339'],
    ['author number', { ...ociConfig, author: 1 }, 'cfg: author: must be a string'],
    ['config array', { ...ociConfig, config: [] }, 'cfg: config: must be an object, got []'],
    ['config.User', { ...ociConfig, config: { User: 0 } }, 'cfg: config.User: must be a string, got 0'],
    ['config.Env entry', { ...ociConfig, config: { Env: ['A=1', 2] } }, 'cfg: config.Env[1]: must be a string, got 2'],
    ['config.Entrypoint string', { ...ociConfig, config: { Entrypoint: '/bin/sh' } }, 'cfg: config.Entrypoint: must be an array of strings'],
    ['config.Cmd entry', { ...ociConfig, config: { Cmd: [null] } }, 'cfg: config.Cmd[0]: must be a string, got null'],
    ['config.Labels value', { ...ociConfig, config: { Labels: { version: 2 } } }, 'cfg: config.Labels["version"]: must be a string, got 2'],
    ['config.ExposedPorts list', { ...ociConfig, config: { ExposedPorts: ['80/tcp'] } }, 'cfg: config.ExposedPorts: must be an object'],
    ['config.Volumes value', { ...ociConfig, config: { Volumes: { '/data': true } } }, 'cfg: config.Volumes["/data"]: must be an object, got true'],
    ['config.ArgsEscaped', { ...ociConfig, config: { ArgsEscaped: 'true' } }, 'cfg: config.ArgsEscaped: must be true or false'],
    ['config.Healthcheck.Interval', { ...ociConfig, config: { Healthcheck: { Interval: '30s' } } }, 'cfg: config.Healthcheck.Interval: must be an integer, got "30s"'],
    ['config.Healthcheck.Test', { ...ociConfig, config: { Healthcheck: { Test: 'curl' } } }, 'cfg: config.Healthcheck.Test: must be an array of strings'],
    ['rootfs missing', { ...ociConfig, rootfs: undefined }, 'cfg: rootfs: required'],
    ['rootfs type', { ...ociConfig, rootfs: { type: 'layer', diff_ids: [] } }, 'cfg: rootfs.type: must be "layers", got "layer"'],
    ['rootfs diff_ids missing', { ...ociConfig, rootfs: { type: 'layers' } }, 'cfg: rootfs.diff_ids: required'],
    ['rootfs diff_ids object', { ...ociConfig, rootfs: { type: 'layers', diff_ids: {} } }, 'cfg: rootfs.diff_ids: must be an array, got {}'],
    ['rootfs diff_ids entry', { ...ociConfig, rootfs: { type: 'layers', diff_ids: [3] } }, 'cfg: rootfs.diff_ids[0]: must be a string, got 3'],
    ['history object', { ...ociConfig, history: {} }, 'cfg: history: must be an array, got {}'],
    ['history entry', { ...ociConfig, history: ['x'] }, 'cfg: history[0]: must be an object, got "x"'],
    ['history empty_layer', { ...ociConfig, history: [{ empty_layer: 'yes' }] }, 'cfg: history[0].empty_layer: must be true or false, got "yes"'],
    ['history created', { ...ociConfig, history: [{}, { created: 'now' }] }, 'cfg: history[1].created: must be an RFC 3339'],
  ])('rejects %s', (_name, doc, message) => {
    const err = thrown(() => parseImageConfig(bytesOf(doc), 'cfg'));
    expect(err.code).toBe('VALIDATION');
    expect(err.message).toContain(message);
  });

  it('rejects bytes that are not a JSON object', () => {
    expect(thrown(() => parseImageConfig(Buffer.from('{'), 'cfg')).message).toContain('cfg is not valid JSON');
    expect(thrown(() => parseImageConfig(Buffer.from('null'), 'cfg')).message).toBe('cfg: must be a JSON object, got null');
    expect(thrown(() => parseImageConfig(Buffer.from(`\uFEFF${JSON.stringify(ociConfig)}`), 'cfg')).message).toContain('not valid JSON');
  });
});
