#!/usr/bin/env node
// sextant-graphite is a Sextant exporter plugin written in Node.js: it
// writes metrics snapshots in Graphite's plaintext protocol with Graphite
// 1.1 tags, and can also send each export to a Carbon listener over TCP.
//
// It speaks the plugin protocol of plugins/proto/sextant/plugin/v1/
// exporter.proto over gRPC, launched by HashiCorp go-plugin like any Go
// plugin: the magic cookie SEXTANT_PLUGIN=exporter, application protocol
// version 1, a Unix socket, the handshake line on stdout and hclog-shaped
// JSON log lines on stderr. README.md describes the output layout.
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const PLUGIN_NAME = 'graphite';
const PLUGIN_VERSION = '1.0.0';
const FORMAT = 'graphite';
const CONTENT_TYPE = 'text/plain; charset=utf-8';

// The go-plugin handshake, as plugins/proto/pluginv1/protocol.go has it.
const CORE_PROTOCOL_VERSION = 1;
const APP_PROTOCOL_VERSION = 1;
const MAGIC_COOKIE_KEY = 'SEXTANT_PLUGIN';
const MAGIC_COOKIE_VALUE = 'exporter';
// pluginv1.MaxMessageBytes: a snapshot of a million series fits.
const MAX_MESSAGE_BYTES = 512 * 1024 * 1024;

// The protocol's descriptors (our proto and the OTLP files it imports),
// written by `make proto`, found relative to this file so that the plugin
// runs from a checkout.
const DESCRIPTOR_SET = path.join(__dirname, '..', '..', 'proto', 'sextant-plugin-v1.binpb');

// proto-loader options, used for every service: 64-bit integers arrive as
// decimal strings (exact), enums as their names, oneofs name the field set.
const LOADER_OPTIONS = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

const DEFAULT_TIMEOUT_MS = 5000;
// setTimeout's largest delay.
const MAX_TIMEOUT_MS = 2147483647;
// How long a stop waits for calls in flight; go-plugin kills a plugin that
// has not exited 2 s after asking it to.
const STOP_GRACE_MS = 1000;
// How long an interrupt (Ctrl-C reaches the whole process group) leaves
// for Sextant to make its last exports and stop the plugin itself; its
// shutdown is bounded by 15 s.
const INTERRUPT_GRACE_MS = 15000;
// How often the plugin checks that Sextant is still its parent.
const PARENT_POLL_MS = 1000;

// gRPC status codes (grpc/doc/statuscodes.md), so that the pure functions
// below need no gRPC library.
const Status = Object.freeze({
  CANCELLED: 1,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
});

// OTLP DataPointFlags.FLAG_NO_RECORDED_VALUE: the point has no value.
const FLAG_NO_RECORDED_VALUE = 1;

// ---------------------------------------------------------------------------
// Logging: one JSON object a line on stderr, in hclog's shape, so that
// go-plugin re-logs each line through Sextant's logger with its level,
// message and fields.

// hclogTime formats a Date as hclog's JSON timestamps, the layout
// go-plugin parses: 2006-01-02T15:04:05.000000Z07:00 (six fraction digits).
function hclogTime(date) {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

// The log levels, as hclog names them, in order.
const LEVELS = ['trace', 'debug', 'info', 'warn', 'error'];
// ENV_LOG_LEVEL sets the lowest level logged, as for plugins built with
// Sextant's Go SDK; the default is debug, and Sextant filters by its own.
const ENV_LOG_LEVEL = 'SEXTANT_PLUGIN_LOG_LEVEL';
const DEFAULT_LOG_LEVEL = 'debug';

// parseLevel reads a level name as hclog spells them ("warning" too); it
// returns '' for anything else.
function parseLevel(name) {
  const level = String(name || '').trim().toLowerCase();
  if (level === 'warning') return 'warn';
  return LEVELS.includes(level) ? level : '';
}

// newLogger returns a logger writing entries of level and above to
// stream. Field values that JSON cannot hold (BigInt, Error) are written
// as strings.
function newLogger(stream, level = DEFAULT_LOG_LEVEL, now = () => new Date()) {
  const min = LEVELS.indexOf(parseLevel(level) || DEFAULT_LOG_LEVEL);
  const write = (entryLevel, message, fields) => {
    if (LEVELS.indexOf(entryLevel) < min) return;
    const entry = { '@level': entryLevel, '@message': message, '@timestamp': hclogTime(now()) };
    for (const [key, value] of Object.entries(fields || {})) {
      if (value === undefined) continue;
      if (typeof value === 'bigint') entry[key] = value.toString();
      else if (value instanceof Error) entry[key] = value.message;
      else entry[key] = value;
    }
    try {
      stream.write(JSON.stringify(entry) + '\n');
    } catch {
      // stderr is gone with the host; the stream's error handler stops us.
    }
  };
  return {
    debug: (message, fields) => write('debug', message, fields),
    info: (message, fields) => write('info', message, fields),
    warn: (message, fields) => write('warn', message, fields),
    error: (message, fields) => write('error', message, fields),
  };
}

// ---------------------------------------------------------------------------
// Configuration: the plugin's section of Sextant's YAML, as JSON.

const CONFIG_FIELDS = ['address', 'prefix', 'timeout_ms'];
// A Graphite path node: letters, digits, '_', '-' and ':'. Nodes are
// joined with dots.
const NODE = '[A-Za-z0-9_:-]+';
const PREFIX_RE = new RegExp(`^${NODE}(\\.${NODE})*$`);
const ADDRESS_RE = /^(\[[^\]\s]+\]|[^\s:[\]]+):(\d{1,5})$/;

function typeName(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

// parseAddress splits host:port ([v6]:port for IPv6) into its parts, or
// returns null when address is not one.
function parseAddress(address) {
  const m = ADDRESS_RE.exec(address);
  if (!m) return null;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return null;
  const host = m[1].startsWith('[') ? m[1].slice(1, -1) : m[1];
  return { host, port };
}

// parseConfig validates a Configure request's JSON and returns the
// configuration with its defaults and every problem found, each with the
// path of its field. A null field is as good as an absent one.
function parseConfig(text) {
  const config = { prefix: '', address: '', timeoutMs: DEFAULT_TIMEOUT_MS };
  const errors = [];
  let raw;
  try {
    raw = JSON.parse(text === '' ? '{}' : text);
  } catch (err) {
    return { config, errors: [{ path: '', message: `not valid JSON: ${err.message}` }] };
  }
  if (typeName(raw) !== 'object') {
    return { config, errors: [{ path: '', message: `must be an object, got ${typeName(raw)}` }] };
  }
  for (const key of Object.keys(raw).sort()) {
    const value = raw[key];
    if (!CONFIG_FIELDS.includes(key)) {
      errors.push({ path: key, message: `unknown field; the fields are ${CONFIG_FIELDS.join(', ')}` });
      continue;
    }
    if (value === null) continue;
    switch (key) {
      case 'prefix':
        if (typeof value !== 'string') {
          errors.push({ path: key, message: `must be a string, got ${typeName(value)}` });
        } else if (value !== '' && !PREFIX_RE.test(value)) {
          errors.push({
            path: key,
            message: `must be dot-separated nodes of letters, digits, '_', '-' and ':', got ${JSON.stringify(value)}`,
          });
        } else {
          config.prefix = value;
        }
        break;
      case 'address':
        if (typeof value !== 'string') {
          errors.push({ path: key, message: `must be a string, got ${typeName(value)}` });
        } else if (value !== '' && parseAddress(value) === null) {
          errors.push({
            path: key,
            message: `must be host:port with a port from 1 to 65535 (e.g. carbon:2003 or [::1]:2003), got ${JSON.stringify(value)}`,
          });
        } else {
          config.address = value;
        }
        break;
      case 'timeout_ms':
        if (typeof value !== 'number') {
          errors.push({ path: key, message: `must be a number, got ${typeName(value)}` });
        } else if (!Number.isInteger(value) || value < 1 || value > MAX_TIMEOUT_MS) {
          errors.push({ path: key, message: `must be a whole number of milliseconds from 1 to ${MAX_TIMEOUT_MS}, got ${value}` });
        } else {
          config.timeoutMs = value;
        }
        break;
    }
  }
  return { config, errors };
}

// ---------------------------------------------------------------------------
// The Graphite plaintext format: "<path>[;tag=value...] <value> <seconds>\n".

// sanitizeName makes a metric name one Graphite path node: anything but
// letters, digits, '_', '-' and ':' becomes '_' (an OpenTelemetry name's
// dots too, as Prometheus does, so that only the prefix makes hierarchy).
function sanitizeName(name) {
  return name.replace(/[^A-Za-z0-9_:-]/gu, '_');
}

// sanitizeTagKey keeps printable ASCII except the characters Graphite 1.1
// forbids in tag names (;!^=); anything else becomes '_'.
function sanitizeTagKey(key) {
  const s = key.replace(/[^\x21-\x7e]|[;!^=]/gu, '_');
  return s === '' ? '_' : s;
}

// sanitizeTagValue keeps printable ASCII except ';' (forbidden in tag
// values) and blanks (they end a field of the line); anything else becomes
// '_', and so does a leading '~', which Graphite forbids.
function sanitizeTagValue(value) {
  return value.replace(/[^\x21-\x7e]|;/gu, '_').replace(/^~/, '_');
}

// formatFloat writes a double the shortest way that reads back exactly
// (1e+21 and 5e-7 included: Carbon parses values with Python's float).
function formatFloat(x) {
  if (x === Infinity) return '+Inf';
  if (x === -Infinity) return '-Inf';
  if (Object.is(x, -0)) return '0';
  return String(x);
}

// anyValueString renders an OTLP AnyValue as a label value.
function anyValueString(v) {
  if (!v || !v.value) return '';
  switch (v.value) {
    case 'string_value':
      return v.string_value;
    case 'bool_value':
      return v.bool_value ? 'true' : 'false';
    case 'int_value':
      return String(v.int_value);
    case 'double_value':
      return formatFloat(v.double_value);
    case 'bytes_value':
      return Buffer.from(v.bytes_value).toString('base64');
    case 'array_value':
      return JSON.stringify((v.array_value.values || []).map(anyValueString));
    case 'kvlist_value':
      return JSON.stringify(Object.fromEntries((v.kvlist_value.values || []).map((kv) => [kv.key, anyValueString(kv.value)])));
    default:
      return '';
  }
}

// metadataString returns the string value of an OTLP metric's metadata key.
function metadataString(metric, key) {
  for (const kv of metric.metadata || []) {
    if (kv.key === key) return anyValueString(kv.value);
  }
  return '';
}

// Graphite's tag "name" is the series' path itself, so a label of that
// name is renamed, as Prometheus renames a conflicting target label.
const RESERVED_TAG = 'name';
const RENAMED_RESERVED_TAG = 'exported_name';

// pointTags returns a data point's attributes as [key, value] tag pairs
// sorted by key, Graphite's canonical order. An attribute with an empty
// value is absent, as in Prometheus (and Graphite rejects empty values).
// reserved is the tag the point's lines add (le, quantile) or ''; keys that
// equal it or each other once sanitised get _2, _3... in attribute-key
// order, the same on every line of the point.
function pointTags(attributes, reserved) {
  const attrs = [];
  for (const kv of attributes || []) {
    const value = anyValueString(kv.value);
    if (value === '') continue;
    let key = sanitizeTagKey(kv.key);
    if (key === RESERVED_TAG) key = RENAMED_RESERVED_TAG;
    attrs.push([key, kv.key, sanitizeTagValue(value)]);
  }
  attrs.sort((a, b) => cmp(a[0], b[0]) || cmp(a[1], b[1]));
  const used = new Set(reserved ? [reserved] : []);
  const pairs = [];
  for (const [key, , value] of attrs) {
    let k = key;
    for (let n = 2; used.has(k); n++) k = `${key}_${n}`;
    used.add(k);
    pairs.push([k, value]);
  }
  return pairs.sort((a, b) => cmp(a[0], b[0]));
}

// renderTags writes sorted tag pairs as ";k=v...", with extra ([key,
// value] or null) in its place by key.
function renderTags(pairs, extra) {
  let out = '';
  let placed = extra === null;
  for (const [k, v] of pairs) {
    if (!placed && extra[0] < k) {
      out += `;${extra[0]}=${extra[1]}`;
      placed = true;
    }
    out += `;${k}=${v}`;
  }
  if (!placed) out += `;${extra[0]}=${extra[1]}`;
  return out;
}

function cmp(a, b) {
  if (a < b) return -1;
  return a > b ? 1 : 0;
}

const NANOS_PER_SECOND = 1000000000n;

// toBigInt reads a 64-bit integer that proto-loader gave as a string.
function toBigInt(v) {
  if (v === undefined || v === null || v === '') return 0n;
  return BigInt(v);
}

// The tag each kind of point adds to some of its lines.
const RESERVED_BY_KIND = { histogram: 'le', summary: 'quantile' };

// formatExport writes metricsData (an OTLP MetricsData) as Graphite lines.
// Each data point is stamped with its own time_unix_nano in whole seconds,
// or fallbackNanos when it has none. It returns the text, the number of
// series (data points) written and how many values were skipped, by
// reason.
function formatExport(metricsData, { prefix = '', fallbackNanos = 0n } = {}) {
  const lines = [];
  const skipped = {};
  const skip = (reason) => {
    skipped[reason] = (skipped[reason] || 0) + 1;
  };
  let series = 0;
  let lastNanos = null;
  let seconds = '';
  for (const rm of (metricsData && metricsData.resource_metrics) || []) {
    for (const sm of rm.scope_metrics || []) {
      for (const metric of sm.metrics || []) {
        const name = metadataString(metric, 'prometheus.name') || metric.name || '';
        if (name === '') {
          skip('no_name');
          continue;
        }
        const base = (prefix ? prefix + '.' : '') + sanitizeName(name);
        const kind = metric.data;
        const points = (kind && metric[kind] && metric[kind].data_points) || [];
        for (const dp of points) {
          if ((dp.flags & FLAG_NO_RECORDED_VALUE) !== 0) {
            skip('no_recorded_value');
            continue;
          }
          // Points of one snapshot mostly share their time: convert once.
          if (dp.time_unix_nano !== lastNanos) {
            lastNanos = dp.time_unix_nano;
            const nanos = toBigInt(lastNanos);
            seconds = ((nanos === 0n ? fallbackNanos : nanos) / NANOS_PER_SECOND).toString();
          }
          const pairs = pointTags(dp.attributes, RESERVED_BY_KIND[kind] || '');
          const plain = renderTags(pairs, null);
          // line adds one line of the point; extra is its le or quantile.
          const line = (suffix, extra, value) => {
            const tags = extra === null ? plain : renderTags(pairs, extra);
            lines.push(`${base}${suffix}${tags} ${value} ${seconds}`);
          };
          const before = lines.length;
          switch (kind) {
            case 'gauge':
            case 'sum':
              numberPoint(dp, line, skip);
              break;
            case 'histogram':
              histogramPoint(dp, line, skip);
              break;
            case 'summary':
              summaryPoint(dp, line, skip);
              break;
            case 'exponential_histogram':
              // Exponential buckets have no Graphite form without
              // re-bucketing; their sum and count do.
              sumAndCount(dp, line, skip);
              break;
            default:
              skip('unknown_kind');
          }
          if (lines.length > before) series++;
        }
      }
    }
  }
  const text = lines.length === 0 ? '' : lines.join('\n') + '\n';
  return { text, series, skipped };
}

function finite(x, skip) {
  if (Number.isFinite(x)) return true;
  skip('not_finite');
  return false;
}

function numberPoint(dp, line, skip) {
  if (dp.value === 'as_double') {
    if (finite(dp.as_double, skip)) line('', null, formatFloat(dp.as_double));
  } else if (dp.value === 'as_int') {
    line('', null, String(dp.as_int));
  } else {
    skip('no_value');
  }
}

function sumAndCount(dp, line, skip) {
  if (dp._sum === 'sum' || (dp._sum === undefined && typeof dp.sum === 'number')) {
    if (finite(dp.sum, skip)) line('_sum', null, formatFloat(dp.sum));
  }
  line('_count', null, toBigInt(dp.count).toString());
}

// histogramPoint writes an explicit-bucket histogram as Prometheus does:
// cumulative buckets (OTLP's counts are per bucket, so they are summed)
// ending at le=+Inf, then _sum and _count.
function histogramPoint(dp, line, skip) {
  const counts = dp.bucket_counts || [];
  const bounds = dp.explicit_bounds || [];
  if (counts.length > 0 && counts.length !== bounds.length + 1) {
    skip('malformed_histogram');
    return;
  }
  // Counts add up as Numbers while that is exact, as BigInts past 2^53.
  let cumulative = 0;
  for (let i = 0; i < counts.length; i++) {
    if (typeof cumulative === 'number') {
      cumulative += Number(counts[i]);
      if (!Number.isSafeInteger(cumulative)) cumulative = sumBigInt(counts, i);
    } else {
      cumulative += toBigInt(counts[i]);
    }
    const le = i < bounds.length ? formatFloat(bounds[i]) : '+Inf';
    line('_bucket', ['le', le], cumulative.toString());
  }
  sumAndCount(dp, line, skip);
}

// sumBigInt adds counts[0..last] exactly.
function sumBigInt(counts, last) {
  let sum = 0n;
  for (let i = 0; i <= last; i++) sum += toBigInt(counts[i]);
  return sum;
}

function summaryPoint(dp, line, skip) {
  for (const q of dp.quantile_values || []) {
    if (finite(q.value, skip)) line('', ['quantile', formatFloat(q.quantile)], formatFloat(q.value));
  }
  if (finite(dp.sum, skip)) line('_sum', null, formatFloat(dp.sum));
  line('_count', null, toBigInt(dp.count).toString());
}

// mapField returns a protobuf map field as an object. Loaded from a
// descriptor set, proto-loader gives maps as their wire form, a list of
// {key, value} entries; from .proto text, as an object.
function mapField(field) {
  if (Array.isArray(field)) return Object.fromEntries(field.map((e) => [e.key, e.value]));
  return field || {};
}

// ---------------------------------------------------------------------------
// Delivery to Carbon.

// StatusError is a failure with the gRPC status code it is reported with.
class StatusError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

// sendToCarbon writes text to the Carbon plaintext listener at address on
// a new TCP connection and resolves once it is written and the connection
// closed. timeoutMs bounds it all; signal aborts it. Failures are
// StatusErrors: UNAVAILABLE for a listener that is down or too slow.
function sendToCarbon(address, text, timeoutMs, signal) {
  return new Promise((resolve, reject) => {
    const target = parseAddress(address);
    if (target === null) {
      reject(new StatusError(Status.INTERNAL, `graphite: bad address ${JSON.stringify(address)}`));
      return;
    }
    let finished = false;
    let done = false;
    const socket = net.createConnection({ host: target.host, port: target.port });
    const settle = (err) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (signal) signal.removeEventListener('abort', onAbort);
      socket.destroy();
      if (err) reject(err);
      else resolve();
    };
    const onAbort = () => settle(new StatusError(Status.CANCELLED, `graphite: send to ${address}: cancelled`));
    const timer = setTimeout(() => {
      // Everything was handed to the kernel and the end sent: delivered,
      // even if the listener is slow to close its side.
      if (finished) settle();
      else settle(new StatusError(Status.UNAVAILABLE, `graphite: send to ${address}: not done within ${timeoutMs} ms`));
    }, timeoutMs);
    if (signal) {
      if (signal.aborted) {
        onAbort();
        return;
      }
      signal.addEventListener('abort', onAbort);
    }
    socket.on('error', (err) => settle(new StatusError(Status.UNAVAILABLE, `graphite: send to ${address}: ${err.message}`)));
    socket.on('connect', () => {
      socket.end(text, () => {
        finished = true;
      });
    });
    // Carbon sends nothing; discard whatever comes so that 'end' arrives.
    socket.resume();
    socket.on('close', (hadError) => {
      if (!hadError && finished) settle();
      else if (!hadError) settle(new StatusError(Status.UNAVAILABLE, `graphite: send to ${address}: connection closed before the data was written`));
    });
  });
}

// ---------------------------------------------------------------------------
// The gRPC services.

// The go-plugin services a plugin process serves besides its own, as
// protobuf.js JSON descriptors (their .proto files are in go-plugin's
// internal/plugin and grpc's health/v1): the health check go-plugin pings,
// the controller it asks to shut the plugin down, and the stdio stream it
// subscribes to.
const GO_PLUGIN_SERVICES = {
  nested: {
    google: { nested: { protobuf: { nested: { Empty: { fields: {} } } } } },
    grpc: {
      nested: {
        health: {
          nested: {
            v1: {
              nested: {
                HealthCheckRequest: { fields: { service: { type: 'string', id: 1 } } },
                HealthCheckResponse: {
                  fields: { status: { type: 'ServingStatus', id: 1 } },
                  nested: {
                    ServingStatus: { values: { UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2, SERVICE_UNKNOWN: 3 } },
                  },
                },
                Health: {
                  methods: {
                    Check: { requestType: 'HealthCheckRequest', responseType: 'HealthCheckResponse' },
                    Watch: { requestType: 'HealthCheckRequest', responseType: 'HealthCheckResponse', responseStream: true },
                  },
                },
              },
            },
          },
        },
      },
    },
    plugin: {
      nested: {
        Empty: { fields: {} },
        GRPCController: { methods: { Shutdown: { requestType: 'Empty', responseType: 'Empty' } } },
        StdioData: {
          fields: { channel: { type: 'Channel', id: 1 }, data: { type: 'bytes', id: 2 } },
          nested: { Channel: { values: { INVALID: 0, STDOUT: 1, STDERR: 2 } } },
        },
        GRPCStdio: {
          methods: { StreamStdio: { requestType: 'google.protobuf.Empty', responseType: 'StdioData', responseStream: true } },
        },
      },
    },
  },
};

// go-plugin's health check asks for this service.
const HEALTH_SERVICE = 'plugin';

// loadDependencies requires the npm packages, logging how to install
// them when they are missing.
function loadDependencies(log) {
  try {
    return { grpc: require('@grpc/grpc-js'), protoLoader: require('@grpc/proto-loader') };
  } catch (err) {
    if (err && err.code === 'MODULE_NOT_FOUND') {
      log.error(`the plugin's npm packages are missing: run npm ci in ${__dirname}`, { error: err.message.split('\n')[0] });
      process.exit(1);
    }
    throw err;
  }
}

// Plugin is the exporter's state and its gRPC handlers.
class Plugin {
  constructor(log) {
    this.log = log;
    this.config = parseConfig('{}').config;
  }

  describe(call, callback) {
    const req = call.request;
    this.log.info('described to Sextant', { host_version: req.host_version, protocol_version: req.protocol_version });
    callback(null, {
      name: PLUGIN_NAME,
      version: PLUGIN_VERSION,
      description: 'Graphite plaintext protocol with 1.1 tags, optionally sent to Carbon over TCP',
      formats: [FORMAT],
      capabilities: ['CAPABILITY_CONFIGURE', 'CAPABILITY_EXPORT_CALLBACKS'],
    });
  }

  configure(call, callback) {
    const { config, errors } = parseConfig(Buffer.from(call.request.config_json || '').toString('utf8'));
    if (errors.length === 0) {
      this.config = config;
      this.log.info('configured', { prefix: config.prefix, address: config.address, timeout_ms: config.timeoutMs });
    } else {
      // The errors go back to Sextant, which reports them; the previous
      // configuration stays in effect.
      this.log.debug('configuration rejected', { errors: errors.length });
    }
    callback(null, { errors });
  }

  async export(call, callback) {
    const req = call.request;
    try {
      if (req.format !== FORMAT) {
        throw new StatusError(Status.INVALID_ARGUMENT, `graphite: unknown format ${JSON.stringify(req.format)}; this plugin writes ${FORMAT}`);
      }
      const options = Object.keys(mapField(req.options)).sort();
      if (options.length > 0) {
        throw new StatusError(Status.INVALID_ARGUMENT, `graphite: unknown option ${JSON.stringify(options[0])}; the graphite format takes no options`);
      }
      const config = this.config;
      let fallbackNanos = toBigInt(req.time_unix_nano);
      if (fallbackNanos === 0n) fallbackNanos = BigInt(Date.now()) * 1000000n;
      const out = formatExport(req.metrics, { prefix: config.prefix, fallbackNanos });
      let destination = '';
      if (config.address !== '' && out.text !== '') {
        await this.deliver(call, config, out.text);
        destination = config.address;
      }
      this.log.debug('exported', {
        export_id: req.export_id,
        target: req.target,
        series: out.series,
        bytes: Buffer.byteLength(out.text),
        skipped: Object.keys(out.skipped).length > 0 ? out.skipped : undefined,
        destination: destination || undefined,
      });
      callback(null, { data: Buffer.from(out.text, 'utf8'), content_type: CONTENT_TYPE, series: String(out.series), destination });
    } catch (err) {
      if (err instanceof StatusError) {
        callback({ code: err.code, details: err.message });
      } else {
        // A bug of the plugin's, not a failed delivery: its stack helps.
        this.log.error('export failed', { export_id: req.export_id, error: err, stack: err && err.stack });
        callback({ code: Status.INTERNAL, details: `graphite: ${err.message}` });
      }
    }
  }

  // deliver sends text to Carbon within the configured timeout and the
  // call's deadline, whichever ends first; a cancelled call stops it.
  async deliver(call, config, text) {
    const deadline = call.getDeadline();
    const deadlineMs = deadline instanceof Date ? deadline.getTime() : Number(deadline);
    const left = Number.isFinite(deadlineMs) ? Math.max(1, deadlineMs - Date.now()) : Infinity;
    const controller = new AbortController();
    const onCancel = () => controller.abort();
    call.on('cancelled', onCancel);
    try {
      await sendToCarbon(config.address, text, Math.min(config.timeoutMs, left), controller.signal);
    } catch (err) {
      if (err instanceof StatusError && err.code === Status.UNAVAILABLE && left < config.timeoutMs) {
        throw new StatusError(Status.DEADLINE_EXCEEDED, err.message.replace(/not done within \d+ ms$/, 'the call deadline passed'));
      }
      throw err;
    } finally {
      call.removeListener('cancelled', onCancel);
    }
  }

  exportRequested(call, callback) {
    const r = call.request;
    this.log.info('export requested', { export_id: r.export_id, format: r.format, target: r.target });
    callback(null, {});
  }

  exportCompleted(call, callback) {
    const r = call.request;
    this.log.info('export completed', {
      export_id: r.export_id,
      format: r.format,
      target: r.target,
      exporter: r.exporter,
      bytes: Number(r.bytes),
      series: Number(r.series),
      duration_ms: Number(r.duration_nanos) / 1e6,
      error: r.error || undefined,
    });
    callback(null, {});
  }

  cacheSynced(call, callback) {
    callback({ code: Status.UNIMPLEMENTED, details: 'graphite: CacheSynced is not a capability of this plugin' });
  }
}

// resolveGroup turns PLUGIN_UNIX_SOCKET_GROUP (a group id or name) into a
// group id.
function resolveGroup(group) {
  if (/^\d+$/.test(group)) return Number(group);
  for (const line of fs.readFileSync('/etc/group', 'utf8').split('\n')) {
    const fields = line.split(':');
    if (fields[0] === group && /^\d+$/.test(fields[2] || '')) return Number(fields[2]);
  }
  throw new Error(`PLUGIN_UNIX_SOCKET_GROUP: no group named ${JSON.stringify(group)}`);
}

function bindAsync(server, grpc, address) {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port)));
  });
}

// listen binds the server where go-plugin expects it: a Unix socket in
// PLUGIN_UNIX_SOCKET_DIR or the temporary directory; on Windows, the
// first free TCP port of 127.0.0.1 from PLUGIN_MIN_PORT to
// PLUGIN_MAX_PORT. It returns the handshake's network and address, and the
// socket file to remove at exit.
async function listen(server, grpc, env) {
  if (process.platform === 'win32') {
    const min = Number(env.PLUGIN_MIN_PORT || 0);
    const max = Number(env.PLUGIN_MAX_PORT || 0);
    if (!Number.isInteger(min) || !Number.isInteger(max) || min > max) {
      throw new Error(`bad plugin port range PLUGIN_MIN_PORT=${env.PLUGIN_MIN_PORT} PLUGIN_MAX_PORT=${env.PLUGIN_MAX_PORT}`);
    }
    for (let port = min; port <= max; port++) {
      try {
        const bound = await bindAsync(server, grpc, `127.0.0.1:${port}`);
        return { network: 'tcp', address: `127.0.0.1:${bound}`, socketFile: '' };
      } catch {
        // taken: try the next one
      }
    }
    throw new Error(`no free TCP port from ${min} to ${max}`);
  }
  const dir = env.PLUGIN_UNIX_SOCKET_DIR || os.tmpdir();
  const socketFile = path.join(dir, `sextant-graphite-${process.pid}-${crypto.randomBytes(6).toString('hex')}.sock`);
  await bindAsync(server, grpc, `unix:${socketFile}`);
  if (env.PLUGIN_UNIX_SOCKET_GROUP) {
    fs.chownSync(socketFile, -1, resolveGroup(env.PLUGIN_UNIX_SOCKET_GROUP));
    fs.chmodSync(socketFile, 0o660);
  }
  return { network: 'unix', address: socketFile, socketFile };
}

// main serves the plugin until Sextant stops it (go-plugin's Shutdown),
// goes away, or a signal says to stop.
async function main() {
  const env = process.env;
  if (env[MAGIC_COOKIE_KEY] !== MAGIC_COOKIE_VALUE) {
    process.stderr.write(
      `sextant-graphite is a Sextant exporter plugin: Sextant starts it itself (${MAGIC_COOKIE_KEY}=${MAGIC_COOKIE_VALUE}).\n` +
        `Register it in Sextant's configuration instead of running it by hand:\n\n` +
        `plugins:\n  instances:\n    - path: ${path.relative(process.cwd(), __filename) || __filename}\n      config: {prefix: sextant}\n`,
    );
    process.exit(2);
  }
  const log = newLogger(process.stderr, env[ENV_LOG_LEVEL]);
  if (env.PLUGIN_CLIENT_CERT) {
    log.error('Sextant asked for automatic mutual TLS (PLUGIN_CLIENT_CERT), which this plugin does not support; it serves on a Unix socket only its user can reach');
    process.exit(1);
  }
  const offered = (env.PLUGIN_PROTOCOL_VERSIONS || '').split(',').filter((v) => v !== '');
  if (offered.length > 0 && !offered.includes(String(APP_PROTOCOL_VERSION))) {
    // As go-plugin's own servers do, answer with our version anyway: the
    // host then reports the mismatch in its own words.
    log.warn('Sextant does not speak this plugin protocol version', { offered: offered.join(','), plugin_version: APP_PROTOCOL_VERSION });
  }

  const { grpc, protoLoader } = loadDependencies(log);
  let descriptors;
  try {
    descriptors = fs.readFileSync(DESCRIPTOR_SET);
  } catch (err) {
    log.error('cannot read the protocol descriptors; run make proto in the repository', { file: DESCRIPTOR_SET, error: err });
    process.exit(1);
  }
  const exporterPkg = grpc.loadPackageDefinition(protoLoader.loadFileDescriptorSetFromBuffer(descriptors, LOADER_OPTIONS));
  const goPluginPkg = grpc.loadPackageDefinition(protoLoader.fromJSON(GO_PLUGIN_SERVICES, LOADER_OPTIONS));

  const server = new grpc.Server({
    'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
    'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
  });
  const plugin = new Plugin(log);
  server.addService(exporterPkg.sextant.plugin.v1.Exporter.service, {
    Describe: plugin.describe.bind(plugin),
    Configure: plugin.configure.bind(plugin),
    Export: plugin.export.bind(plugin),
    ExportRequested: plugin.exportRequested.bind(plugin),
    ExportCompleted: plugin.exportCompleted.bind(plugin),
    CacheSynced: plugin.cacheSynced.bind(plugin),
  });

  // Streams held open for the host (stdio, health watches), ended at stop.
  const streams = new Set();
  const hold = (call) => {
    streams.add(call);
    call.on('cancelled', () => streams.delete(call));
  };
  server.addService(goPluginPkg.grpc.health.v1.Health.service, {
    Check: (call, callback) => {
      const service = call.request.service;
      if (service === '' || service === HEALTH_SERVICE) callback(null, { status: 'SERVING' });
      else callback({ code: Status.NOT_FOUND, details: `unknown service ${JSON.stringify(service)}` });
    },
    Watch: (call) => {
      const service = call.request.service;
      call.write({ status: service === '' || service === HEALTH_SERVICE ? 'SERVING' : 'SERVICE_UNKNOWN' });
      hold(call);
    },
  });
  // The plugin writes its logs straight to stderr, which go-plugin reads.
  // Its stdio stream (for plugins that redirect their output into it)
  // stays open and empty: go-plugin v1.8.0 only notes a missing one at
  // debug level, older versions warned.
  server.addService(goPluginPkg.plugin.GRPCStdio.service, { StreamStdio: hold });

  let listening = null;
  let stopping = false;
  const stop = (reason, fields) => {
    if (stopping) return;
    stopping = true;
    log.info(`stopping: ${reason}`, fields);
    for (const call of streams) call.end();
    const exit = () => {
      if (listening && listening.socketFile) fs.rmSync(listening.socketFile, { force: true });
      process.exit(0);
    };
    const force = setTimeout(() => {
      server.forceShutdown();
      exit();
    }, STOP_GRACE_MS);
    server.tryShutdown(() => {
      clearTimeout(force);
      exit();
    });
  };
  server.addService(goPluginPkg.plugin.GRPCController.service, {
    Shutdown: (call, callback) => {
      callback(null, {});
      setImmediate(() => stop('Sextant asked the plugin to shut down'));
    },
  });
  // GRPCBroker is not served: this plugin asks the host for no extra
  // connections, and go-plugin quietly gives up its broker stream on
  // UNIMPLEMENTED.

  // Writing to a pipe whose reader (Sextant) is gone fails with EPIPE.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', () => stop('Sextant closed the plugin\'s output'));
  }
  process.on('SIGTERM', () => stop('SIGTERM'));
  let interrupted = false;
  process.on('SIGINT', () => {
    // Ctrl-C reaches Sextant and its plugins alike; go-plugin's plugins
    // ignore it so that the host can still export while it stops. This one
    // waits for the host within a grace period; a second interrupt, or
    // one without a host to wait for, stops it at once.
    if (interrupted || process.ppid === 1) {
      stop('SIGINT');
      return;
    }
    interrupted = true;
    log.info('interrupted: serving until Sextant stops the plugin (a second interrupt stops it now)', { grace_ms: INTERRUPT_GRACE_MS });
    setTimeout(() => stop('SIGINT grace period over'), INTERRUPT_GRACE_MS).unref();
  });
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) stop('Sextant went away', { parent_pid: parent });
  }, PARENT_POLL_MS).unref();

  try {
    listening = await listen(server, grpc, env);
  } catch (err) {
    log.error('cannot listen', { error: err });
    process.exit(1);
  }
  // The handshake: the first and only line on stdout.
  let handshake = `${CORE_PROTOCOL_VERSION}|${APP_PROTOCOL_VERSION}|${listening.network}|${listening.address}|grpc`;
  if (env.PLUGIN_MULTIPLEX_GRPC) {
    // No server certificate, and no broker multiplexing: the host then
    // reports that it is unsupported.
    handshake += '||false';
  }
  process.stdout.write(handshake + '\n');
  // Nothing else may reach stdout: console output goes to the log.
  console.log = console.info = (...args) => log.info(args.join(' '));
  console.warn = (...args) => log.warn(args.join(' '));
  log.debug('plugin address', { network: listening.network, address: listening.address, pid: process.pid });
}

module.exports = {
  Status,
  StatusError,
  hclogTime,
  newLogger,
  parseLevel,
  parseConfig,
  parseAddress,
  sanitizeName,
  sanitizeTagKey,
  sanitizeTagValue,
  formatFloat,
  formatExport,
  mapField,
  sendToCarbon,
  listen,
  LOADER_OPTIONS,
  DESCRIPTOR_SET,
};

if (require.main === module) {
  main().catch((err) => {
    process.stderr.write(`sextant-graphite: ${err && err.stack ? err.stack : err}\n`);
    process.exit(1);
  });
}
