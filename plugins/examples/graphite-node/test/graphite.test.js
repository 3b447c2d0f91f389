// Unit tests of the graphite plugin's pure parts: node --test (npm test).
// graphite_test.go runs them too, and tests the plugin end to end through
// go-plugin as Sextant launches it.
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const { describe, it } = require('node:test');

const g = require('../sextant-graphite.js');

// Builders of OTLP messages in the shape proto-loader decodes them into
// with the plugin's options (snake_case, oneof names, 64-bit as strings).
const str = (s) => ({ value: 'string_value', string_value: s });
const attr = (key, value) => ({ key, value: typeof value === 'string' ? str(value) : value });
const md = (...metrics) => ({ resource_metrics: [{ scope_metrics: [{ metrics }] }] });
const metric = (name, kind, points, promName) => ({
  name,
  metadata: promName ? [attr('prometheus.name', promName), attr('prometheus.type', kind)] : [],
  data: kind,
  [kind]: { data_points: points },
});
const T = '1795600800123456789'; // 2026-11-25T...: 1795600800 s
const dbl = (v, attrs = [], extra = {}) => ({ attributes: attrs, time_unix_nano: T, value: 'as_double', as_double: v, flags: 0, ...extra });

describe('hclogTime', () => {
  it('writes six fraction digits, as go-plugin parses', () => {
    assert.equal(g.hclogTime(new Date(Date.UTC(2026, 10, 25, 8, 9, 10, 42))), '2026-11-25T08:09:10.042000Z');
  });
});

describe('newLogger', () => {
  const capture = (level) => {
    const lines = [];
    const log = g.newLogger({ write: (s) => lines.push(s) }, level, () => new Date(0));
    return { lines, log };
  };
  it('writes hclog-shaped JSON lines', () => {
    const { lines, log } = capture('info');
    log.info('configured', { prefix: 'x', n: 10n, err: new Error('boom'), gone: undefined });
    assert.deepEqual(lines.map((l) => JSON.parse(l)), [
      { '@level': 'info', '@message': 'configured', '@timestamp': '1970-01-01T00:00:00.000000Z', prefix: 'x', n: '10', err: 'boom' },
    ]);
    assert.ok(lines[0].endsWith('\n'));
  });
  for (const [level, want] of [
    ['trace', 4],
    ['debug', 4],
    ['info', 3],
    ['WARNING', 2],
    ['error', 1],
    ['nonsense', 4], // the default, debug
  ]) {
    it(`filters at ${level}`, () => {
      const { lines, log } = capture(level);
      log.debug('d');
      log.info('i');
      log.warn('w');
      log.error('e');
      assert.equal(lines.length, want);
    });
  }
});

describe('parseConfig', () => {
  const cases = [
    { name: 'empty', json: '{}', want: { prefix: '', address: '', timeoutMs: 5000 }, paths: [] },
    { name: 'empty bytes', json: '', want: { prefix: '', address: '', timeoutMs: 5000 }, paths: [] },
    {
      name: 'all fields',
      json: '{"prefix":"sextant.prod-1:a","address":"[::1]:2003","timeout_ms":250}',
      want: { prefix: 'sextant.prod-1:a', address: '[::1]:2003', timeoutMs: 250 },
      paths: [],
    },
    { name: 'nulls are unset', json: '{"prefix":null,"address":null,"timeout_ms":null}', want: { prefix: '', address: '', timeoutMs: 5000 }, paths: [] },
    { name: 'prefix type', json: '{"prefix":5}', paths: ['prefix'], message: /must be a string, got number/ },
    { name: 'prefix empty node', json: '{"prefix":"a..b"}', paths: ['prefix'], message: /dot-separated/ },
    { name: 'prefix leading dot', json: '{"prefix":".a"}', paths: ['prefix'] },
    { name: 'prefix space', json: '{"prefix":"a b"}', paths: ['prefix'] },
    { name: 'prefix semicolon', json: '{"prefix":"a;b"}', paths: ['prefix'] },
    { name: 'address without port', json: '{"address":"carbon"}', paths: ['address'], message: /host:port/ },
    { name: 'address port range', json: '{"address":"carbon:70000"}', paths: ['address'] },
    { name: 'address port zero', json: '{"address":"carbon:0"}', paths: ['address'] },
    { name: 'address bare v6', json: '{"address":"::1:2003"}', paths: ['address'] },
    { name: 'address type', json: '{"address":["a"]}', paths: ['address'], message: /got array/ },
    { name: 'timeout string', json: '{"timeout_ms":"5"}', paths: ['timeout_ms'], message: /must be a number, got string/ },
    { name: 'timeout fraction', json: '{"timeout_ms":1.5}', paths: ['timeout_ms'], message: /whole number/ },
    { name: 'timeout zero', json: '{"timeout_ms":0}', paths: ['timeout_ms'] },
    { name: 'timeout too big', json: '{"timeout_ms":2147483648}', paths: ['timeout_ms'] },
    { name: 'unknown key', json: '{"host":"x"}', paths: ['host'], message: /unknown field; the fields are address, prefix, timeout_ms/ },
    { name: 'every problem', json: '{"zzz":1,"prefix":1,"timeout_ms":-1}', paths: ['prefix', 'timeout_ms', 'zzz'] },
    { name: 'not an object', json: '[1]', paths: [''], message: /must be an object, got array/ },
    { name: 'not JSON', json: '{prefix:', paths: [''], message: /not valid JSON/ },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const { config, errors } = g.parseConfig(c.json);
      assert.deepEqual(errors.map((e) => e.path), c.paths);
      if (c.want) assert.deepEqual(config, c.want);
      if (c.message) assert.match(errors[0].message, c.message);
    });
  }
});

describe('sanitising', () => {
  it('names', () => {
    assert.equal(g.sanitizeName('tasker_tasks_total'), 'tasker_tasks_total');
    assert.equal(g.sanitizeName('job:rate5m'), 'job:rate5m');
    assert.equal(g.sanitizeName('tasker.step duration/ü'), 'tasker_step_duration__');
  });
  it('tag keys', () => {
    assert.equal(g.sanitizeTagKey('queue'), 'queue');
    assert.equal(g.sanitizeTagKey('a;b!c^d=e f'), 'a_b_c_d_e_f');
    assert.equal(g.sanitizeTagKey(''), '_');
  });
  it('tag values', () => {
    assert.equal(g.sanitizeTagValue('a=b!c^d'), 'a=b!c^d');
    assert.equal(g.sanitizeTagValue('a b;c\td\ne'), 'a_b_c_d_e');
    assert.equal(g.sanitizeTagValue('~x~'), '_x~');
    assert.equal(g.sanitizeTagValue('été'), '_t_');
    assert.equal(g.sanitizeTagValue('a😀b'), 'a_b'); // one character, two UTF-16 units
  });
  it('floats', () => {
    assert.equal(g.formatFloat(0.1), '0.1');
    assert.equal(g.formatFloat(-0), '0');
    assert.equal(g.formatFloat(1e21), '1e+21');
    assert.equal(g.formatFloat(5e-7), '5e-7');
    assert.equal(g.formatFloat(Infinity), '+Inf');
    assert.equal(Number(g.formatFloat(0.30000000000000004)), 0.30000000000000004);
  });
  it('addresses', () => {
    assert.deepEqual(g.parseAddress('carbon.example:2003'), { host: 'carbon.example', port: 2003 });
    assert.deepEqual(g.parseAddress('[::1]:2003'), { host: '::1', port: 2003 });
    assert.equal(g.parseAddress('carbon:'), null);
    assert.equal(g.parseAddress('carbon:65536'), null);
  });
});

describe('formatExport', () => {
  it('writes counters, gauges and ints with tags sorted by key', () => {
    const out = g.formatExport(
      md(
        metric('tasks', 'sum', [dbl(3, [attr('status', 'ok'), attr('queue', 'default')])], 'tasks_total'),
        metric('depth', 'gauge', [{ attributes: [], time_unix_nano: T, value: 'as_int', as_int: '-9007199254740993', flags: 0 }], 'queue_depth'),
      ),
      { prefix: 'sextant.test' },
    );
    assert.equal(out.text, 'sextant.test.tasks_total;queue=default;status=ok 3 1795600800\nsextant.test.queue_depth -9007199254740993 1795600800\n');
    assert.equal(out.series, 2);
  });

  it('accumulates histogram buckets', () => {
    const h = {
      attributes: [attr('step', 'fetch')],
      time_unix_nano: T,
      count: '6',
      _sum: 'sum',
      sum: 1560.5,
      bucket_counts: ['1', '2', '1', '2'],
      explicit_bounds: [1, 10, 100],
      flags: 0,
    };
    const out = g.formatExport(md(metric('d', 'histogram', [h], 'step_duration_milliseconds')));
    assert.deepEqual(out.text.trim().split('\n'), [
      'step_duration_milliseconds_bucket;le=1;step=fetch 1 1795600800',
      'step_duration_milliseconds_bucket;le=10;step=fetch 3 1795600800',
      'step_duration_milliseconds_bucket;le=100;step=fetch 4 1795600800',
      'step_duration_milliseconds_bucket;le=+Inf;step=fetch 6 1795600800',
      'step_duration_milliseconds_sum;step=fetch 1560.5 1795600800',
      'step_duration_milliseconds_count;step=fetch 6 1795600800',
    ]);
    assert.equal(out.series, 1);
  });

  it('keeps bucket counts exact past 2^53', () => {
    const h = { attributes: [], time_unix_nano: T, count: '18446744073709551615', bucket_counts: ['9007199254740993', '18437736874454810622'], explicit_bounds: [1], flags: 0 };
    const lines = g.formatExport(md(metric('d', 'histogram', [h], 'h'))).text.trim().split('\n');
    assert.equal(lines[1], 'h_bucket;le=+Inf 18446744073709551615 1795600800');
    assert.equal(lines[2], 'h_count 18446744073709551615 1795600800'); // no _sum: absent
  });

  it('skips NaN, infinities, points without values and malformed histograms', () => {
    const out = g.formatExport(
      md(
        metric('g', 'gauge', [dbl(NaN), dbl(Infinity, [attr('a', 'b')]), dbl(-Infinity, [attr('a', 'c')]), dbl(1, [attr('a', 'd')])], 'g'),
        metric('n', 'gauge', [dbl(7, [], { flags: 1 })], 'n'),
        metric('h', 'histogram', [{ attributes: [], time_unix_nano: T, count: '1', bucket_counts: ['1'], explicit_bounds: [1], flags: 0 }], 'h'),
      ),
    );
    assert.equal(out.text, 'g;a=d 1 1795600800\n');
    assert.equal(out.series, 1);
    assert.deepEqual(out.skipped, { not_finite: 3, no_recorded_value: 1, malformed_histogram: 1 });
  });

  it('renames the name tag, drops empty values and de-duplicates keys', () => {
    const out = g.formatExport(
      md(
        metric('x', 'gauge', [dbl(1, [attr('name', 'n'), attr('exported_name', 'e'), attr('empty', ''), attr('a b', 'v 1'), attr('a_b', '~v2')])], 'x'),
      ),
    );
    assert.equal(out.text, 'x;a_b=v_1;a_b_2=_v2;exported_name=e;exported_name_2=n 1 1795600800\n');
  });

  it('keeps le before a colliding attribute, on every line', () => {
    const h = { attributes: [attr('le', 'x')], time_unix_nano: T, count: '0', bucket_counts: ['0'], explicit_bounds: [], flags: 0 };
    assert.deepEqual(g.formatExport(md(metric('h', 'histogram', [h], 'h'))).text.trim().split('\n'), [
      'h_bucket;le=+Inf;le_2=x 0 1795600800',
      'h_count;le_2=x 0 1795600800', // the same tags on every line of the point
    ]);
  });

  it('falls back to the metric name and to the request time', () => {
    const out = g.formatExport(md(metric('tasker.step.count', 'gauge', [dbl(2, [], { time_unix_nano: '0' })])), { fallbackNanos: 42000000000n });
    assert.equal(out.text, 'tasker_step_count 2 42\n');
  });

  it('writes summaries and the sum and count of exponential histograms', () => {
    const out = g.formatExport(
      md(
        metric('s', 'summary', [{ attributes: [], time_unix_nano: T, count: '4', sum: 10, quantile_values: [{ quantile: 0.5, value: 2 }, { quantile: 0.99, value: 4 }], flags: 0 }], 's'),
        metric('e', 'exponential_histogram', [{ attributes: [], time_unix_nano: T, count: '3', _sum: 'sum', sum: 1.5, flags: 0 }], 'e'),
      ),
    );
    assert.deepEqual(out.text.trim().split('\n'), [
      's;quantile=0.5 2 1795600800',
      's;quantile=0.99 4 1795600800',
      's_sum 10 1795600800',
      's_count 4 1795600800',
      'e_sum 1.5 1795600800',
      'e_count 3 1795600800',
    ]);
    assert.equal(out.series, 2);
  });

  it('writes nothing for an empty snapshot', () => {
    assert.deepEqual(g.formatExport(null), { text: '', series: 0, skipped: {} });
    assert.deepEqual(g.formatExport({ resource_metrics: [] }), { text: '', series: 0, skipped: {} });
  });

  it('reads what the protocol decodes into', () => {
    // Encode a request with the protocol's own descriptors and decode it
    // as the server does: the shapes above must be the real ones.
    const protoLoader = require('@grpc/proto-loader');
    const def = protoLoader.loadFileDescriptorSetFromBuffer(fs.readFileSync(g.DESCRIPTOR_SET), g.LOADER_OPTIONS);
    const exp = def['sextant.plugin.v1.Exporter'].Export;
    const histogram = {
      attributes: [attr('step', 'fetch')],
      time_unix_nano: T,
      count: '3',
      sum: 0.25,
      bucket_counts: ['1', '0', '2'],
      explicit_bounds: [0.1, 1],
    };
    const withoutSum = { time_unix_nano: T, count: '0', bucket_counts: ['0'], explicit_bounds: [] };
    const wire = exp.requestSerialize({
      format: 'graphite',
      options: [
        { key: 'pretty', value: 'true' },
        { key: 'a', value: 'b' },
      ],
      time_unix_nano: T,
      metrics: md(
        metric('h', 'histogram', [histogram], 'h_seconds'),
        metric('z', 'histogram', [withoutSum], 'z'),
        metric('c', 'sum', [{ time_unix_nano: T, as_int: '12' }], 'c_total'),
      ),
    });
    const req = exp.requestDeserialize(wire);
    assert.equal(req.time_unix_nano, T);
    assert.deepEqual(g.mapField(req.options), { pretty: 'true', a: 'b' });
    assert.deepEqual(g.formatExport(req.metrics).text.trim().split('\n'), [
      'h_seconds_bucket;le=0.1;step=fetch 1 1795600800',
      'h_seconds_bucket;le=1;step=fetch 1 1795600800',
      'h_seconds_bucket;le=+Inf;step=fetch 3 1795600800',
      'h_seconds_sum;step=fetch 0.25 1795600800',
      'h_seconds_count;step=fetch 3 1795600800',
      'z_bucket;le=+Inf 0 1795600800',
      'z_count 0 1795600800',
      'c_total 12 1795600800',
    ]);
  });
});

// A failed test must not leave a server keeping node --test alive.
describe('sendToCarbon', { timeout: 20000 }, () => {
  const listen = (onConnection) =>
    new Promise((resolve) => {
      const server = net.createServer(onConnection);
      server.listen(0, '127.0.0.1', () => resolve(server));
    });

  it('delivers the text on one connection', async () => {
    let received = '';
    let done;
    const closed = new Promise((resolve) => (done = resolve));
    const server = await listen((socket) => {
      socket.on('data', (d) => (received += d));
      socket.on('end', () => {
        socket.end();
        done();
      });
    });
    try {
      const { port } = server.address();
      await g.sendToCarbon(`127.0.0.1:${port}`, 'a 1 2\nb 3 4\n', 10000);
      await closed;
      assert.equal(received, 'a 1 2\nb 3 4\n');
    } finally {
      server.close();
    }
  });

  it('counts a listener that never closes as delivered once written', async () => {
    const sockets = [];
    let received = '';
    let gotLine;
    const line = new Promise((resolve) => (gotLine = resolve));
    const server = await listen((socket) => {
      sockets.push(socket);
      socket.on('data', (d) => {
        received += d;
        if (received.endsWith('\n')) gotLine(received);
      });
    });
    try {
      const { port } = server.address();
      // The timeout ends the wait for the listener to close, not the send.
      await g.sendToCarbon(`127.0.0.1:${port}`, 'a 1 2\n', 1000);
      assert.equal(await line, 'a 1 2\n');
    } finally {
      sockets.forEach((s) => s.destroy());
      server.close();
    }
  });

  it('reports a refused connection as UNAVAILABLE', async () => {
    const server = await listen(() => {});
    const { port } = server.address();
    await new Promise((resolve) => server.close(resolve));
    await assert.rejects(g.sendToCarbon(`127.0.0.1:${port}`, 'a 1 2\n', 10000), (err) => {
      assert.equal(err.code, g.Status.UNAVAILABLE);
      assert.match(err.message, new RegExp(`^graphite: send to 127.0.0.1:${port}: connect ECONNREFUSED`));
      return true;
    });
  });

  it('stops when aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(g.sendToCarbon('127.0.0.1:9', 'a 1 2\n', 10000, controller.signal), (err) => err.code === g.Status.CANCELLED);
  });
});
