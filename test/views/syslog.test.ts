import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';

import { pino, type Logger } from 'pino';

import {
  MAX_UDP_MESSAGE_BYTES,
  SyslogOptionsError,
  createSyslogForwarder,
  formatSyslogMessage,
  formatSyslogTimestamp,
  reconnectDelayMs,
  toHeaderField,
  truncateUtf8,
  type SyslogForwarder,
  type SyslogOptions,
} from '../../src/views/syslog.js';

interface LogRecord {
  level: number;
  msg: string;
  count?: number;
  [field: string]: unknown;
}

interface ParsedMessage {
  priority: number;
  timestamp: string;
  hostname: string;
  appName: string;
  procId: string;
  msgId: string;
  text: string;
}

const SYSLOG_LINE =
  /^<(\d{1,3})>1 (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z) (\S{1,255}) (\S{1,48}) (\S{1,128}) (\S{1,32}) -(?: (.*))?$/s;

/** Splits an RFC 5424 message into its fields, and throws when the layout is wrong. */
function parseSyslog(message: string): ParsedMessage {
  const match = SYSLOG_LINE.exec(message);
  if (match === null) throw new Error(`not an RFC 5424 message: ${JSON.stringify(message)}`);
  return {
    priority: Number(match[1]),
    timestamp: match[2] ?? '',
    hostname: match[3] ?? '',
    appName: match[4] ?? '',
    procId: match[5] ?? '',
    msgId: match[6] ?? '',
    text: match[7] ?? '',
  };
}

function captureLogger(): { logger: Logger; records: LogRecord[] } {
  const records: LogRecord[] = [];
  const logger = pino(
    { level: 'debug' },
    { write: (line: string) => records.push(JSON.parse(line) as LogRecord) },
  );
  return { logger, records };
}

/** Polls until `condition` holds. The timeout error names what never happened. */
async function waitFor(what: string, condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Returns a loopback TCP port that was free a moment ago. Nothing listens on it until a test starts a server there. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * A TCP syslog receiver on 127.0.0.1 that parses octet-counting frames (RFC 6587 section 3.4.1)
 * by their byte length. With `endAfter`, it half-closes each connection after that many
 * messages but keeps reading what the client already sent.
 */
class TcpReceiver {
  readonly messages: string[] = [];
  readonly frameErrors: string[] = [];
  connections = 0;
  /** Bytes left over after the last complete frame of each closed connection. */
  readonly leftovers: number[] = [];
  endAfter: number | undefined;
  /** Hook run for each accepted connection before any data is read. `index` counts from 0. */
  onAccept: ((socket: Socket, index: number) => void) | undefined;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  async listen(port = 0): Promise<number> {
    const server = createServer((socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    return (server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    const server = this.server;
    if (server === undefined) return;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private accept(socket: Socket): void {
    this.onAccept?.(socket, this.connections);
    this.connections += 1;
    this.sockets.add(socket);
    let buffered = Buffer.alloc(0);
    let count = 0;
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      for (;;) {
        const space = buffered.indexOf(0x20);
        if (space === -1) return;
        const lengthText = buffered.subarray(0, space).toString('latin1');
        if (!/^[1-9][0-9]*$/.test(lengthText)) {
          this.frameErrors.push(`invalid frame length ${JSON.stringify(lengthText)}`);
          socket.destroy();
          return;
        }
        const end = space + 1 + Number(lengthText);
        if (buffered.length < end) return;
        this.messages.push(buffered.subarray(space + 1, end).toString('utf8'));
        buffered = buffered.subarray(end);
        count += 1;
        if (this.endAfter !== undefined && count === this.endAfter) socket.end();
      }
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      this.sockets.delete(socket);
      this.leftovers.push(buffered.length);
    });
  }
}

class UdpReceiver {
  readonly datagrams: Buffer[] = [];
  private socket: UdpSocket | undefined;

  async listen(port = 0): Promise<number> {
    const socket = createSocket('udp4');
    this.socket = socket;
    socket.on('message', (datagram) => this.datagrams.push(datagram));
    await new Promise<void>((resolve) => socket.bind(port, '127.0.0.1', resolve));
    return socket.address().port;
  }

  async stop(): Promise<void> {
    const socket = this.socket;
    if (socket === undefined) return;
    await new Promise<void>((resolve) => socket.close(() => resolve()));
  }
}

/** Returns a loopback UDP port that was free a moment ago. */
async function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

const forwarders: SyslogForwarder[] = [];
const receivers: { stop(): Promise<void> }[] = [];

function startForwarder(options: SyslogOptions, logger: Logger): SyslogForwarder {
  const forwarder = createSyslogForwarder(
    { reconnectMinMs: 10, reconnectMaxMs: 50, ...options },
    logger,
  );
  forwarders.push(forwarder);
  return forwarder;
}

async function startTcpReceiver(port = 0): Promise<{ receiver: TcpReceiver; port: number }> {
  const receiver = new TcpReceiver();
  receivers.push(receiver);
  return { receiver, port: await receiver.listen(port) };
}

afterEach(async () => {
  await Promise.all(forwarders.splice(0).map((forwarder) => forwarder.close(100)));
  await Promise.all(receivers.splice(0).map((receiver) => receiver.stop()));
});

const numbered = (from: number, to: number): string[] =>
  Array.from(
    { length: to - from + 1 },
    (_, index) => `CEF:0|feedhub|hub|0.1|add|indicator ${from + index}|3|`,
  );

describe('syslog message format', () => {
  test('formatSyslogTimestamp keeps microseconds', () => {
    expect(formatSyslogTimestamp(1_700_000_000_123_456)).toBe('2023-11-14T22:13:20.123456Z');
    expect(formatSyslogTimestamp(1_700_000_000_000_007)).toBe('2023-11-14T22:13:20.000007Z');
  });

  test('formatSyslogMessage header layout', () => {
    const bytes = formatSyslogMessage({
      priority: 86,
      timestampMicros: 1_700_000_000_123_456,
      hostname: 'hub-1.example.org',
      appName: 'feedhub',
      procId: '4242',
      msgId: '-',
      text: 'CEF:0|feedhub|hub|0.1|add|Indicator added|3|src=192.0.2.1',
    });

    expect(bytes.toString('utf8')).toBe(
      '<86>1 2023-11-14T22:13:20.123456Z hub-1.example.org feedhub 4242 - - CEF:0|feedhub|hub|0.1|add|Indicator added|3|src=192.0.2.1',
    );
  });

  test('formatSyslogMessage writes UTF-8 without BOM', () => {
    const bytes = formatSyslogMessage({
      priority: 86,
      timestampMicros: 0,
      hostname: 'h',
      appName: 'a',
      procId: '1',
      msgId: 'm',
      text: 'café',
    });
    const text = ' café';

    expect(bytes.subarray(bytes.length - Buffer.byteLength(text)).toString('utf8')).toBe(text);
    expect(bytes.includes(Buffer.from([0xef, 0xbb, 0xbf]))).toBe(false);
  });

  test('formatSyslogMessage omits empty MSG', () => {
    const bytes = formatSyslogMessage({
      priority: 0,
      timestampMicros: 0,
      hostname: 'h',
      appName: 'a',
      procId: '1',
      msgId: '-',
      text: '',
    });

    expect(bytes.toString('utf8')).toBe('<0>1 1970-01-01T00:00:00.000000Z h a 1 - -');
  });

  test('toHeaderField cleans and cuts values', () => {
    expect(toHeaderField('view change', 32)).toBe('view_change');
    expect(toHeaderField('Änderung🛡', 32)).toBe('_nderung_');
    expect(toHeaderField('x'.repeat(40), 32)).toBe('x'.repeat(32));
    expect(toHeaderField('', 32)).toBe('-');
  });

  test('truncateUtf8 keeps whole characters', () => {
    const bytes = Buffer.from('ab€', 'utf8');

    expect(truncateUtf8(bytes, 4).toString('utf8')).toBe('ab');
    expect(truncateUtf8(bytes, 5).toString('utf8')).toBe('ab€');
    expect(truncateUtf8(bytes, 2).toString('utf8')).toBe('ab');
  });
});

describe('reconnectDelayMs', () => {
  test('reconnectDelayMs stays between min and max', () => {
    for (let attempt = 0; attempt < 60; attempt += 1) {
      for (const random of [0, 0.5, 0.999999]) {
        const delay = reconnectDelayMs(attempt, 10, 1000, () => random);
        expect(delay).toBeGreaterThanOrEqual(10);
        expect(delay).toBeLessThanOrEqual(1000);
      }
    }
  });

  test('reconnectDelayMs doubles its ceiling', () => {
    expect(reconnectDelayMs(0, 10, 1000, () => 1)).toBe(10);
    expect(reconnectDelayMs(3, 10, 1000, () => 1)).toBe(80);
    expect(reconnectDelayMs(3, 10, 1000, () => 0)).toBe(40);
    expect(reconnectDelayMs(20, 10, 1000, () => 0)).toBe(500);
  });
});

describe('createSyslogForwarder options', () => {
  const valid: SyslogOptions = { transport: 'tcp', host: '127.0.0.1', port: 514 };
  const cases: [string, Partial<Record<keyof SyslogOptions, unknown>>, RegExp][] = [
    ['transport', { transport: 'tls' }, /transport "tls" is invalid/],
    ['host', { host: ' ' }, /host " " is invalid/],
    ['port', { port: 70000 }, /port 70000 is invalid: use an integer from 1 to 65535/],
    ['appName space', { appName: 'feed hub' }, /appName "feed hub" is invalid/],
    ['appName length', { appName: 'a'.repeat(49) }, /appName .* 1 to 48 printable/],
    ['hostname', { hostname: 'höst' }, /hostname "höst" is invalid/],
    ['msgId', { msgId: 'm'.repeat(33) }, /msgId .* 1 to 32 printable/],
    ['facility', { facility: 24 }, /facility 24 is invalid: use an integer from 0 to 23/],
    ['severity', { severity: 1.5 }, /severity 1.5 is invalid: use an integer from 0 to 7/],
    ['maxQueue', { maxQueue: 0 }, /maxQueue 0 is invalid/],
    [
      'reconnect order',
      { reconnectMinMs: 100, reconnectMaxMs: 10 },
      /reconnectMaxMs 10 is below reconnectMinMs 100/,
    ],
  ];

  test.each(cases)('options reject invalid %s', (_name, override, expected) => {
    const { logger } = captureLogger();
    const options = { ...valid, ...override } as SyslogOptions;

    expect(() => createSyslogForwarder(options, logger)).toThrow(SyslogOptionsError);
    expect(() => createSyslogForwarder(options, logger)).toThrow(expected);
  });

  test('options report every problem', () => {
    const { logger } = captureLogger();
    let caught: unknown;
    try {
      createSyslogForwarder({ transport: 'tcp', host: '', port: 0, facility: 99 }, logger);
    } catch (err) {
      caught = err;
    }

    expect(caught).toBeInstanceOf(SyslogOptionsError);
    expect((caught as SyslogOptionsError).problems).toHaveLength(3);
  });
});

describe('syslog over TCP', () => {
  test('tcp frames multi-byte messages by byte count', async () => {
    const { receiver, port } = await startTcpReceiver();
    const { logger } = captureLogger();
    const forwarder = startForwarder(
      { transport: 'tcp', host: '127.0.0.1', port, hostname: 'hub-1', msgId: 'viewchange' },
      logger,
    );
    const lines = [
      'CEF:0|feedhub|hub|0.1|add|plain|3|dhost=example.org',
      'CEF:0|feedhub|hub|0.1|add|accents|3|cs1=café münchen',
      'CEF:0|feedhub|hub|0.1|add|wide|3|cs1=日本語 🛡️ emoji',
      '',
      'line with\nnewline and "quotes"',
    ];

    forwarder.send(lines);
    forwarder.send(['CEF:0|feedhub|hub|0.1|remove|gone|3|'], 'view remove');
    await waitFor('6 messages', () => receiver.messages.length >= 6);

    expect(receiver.frameErrors).toEqual([]);
    const parsed = receiver.messages.map(parseSyslog);
    expect(parsed.map((message) => message.text)).toEqual([
      ...lines,
      'CEF:0|feedhub|hub|0.1|remove|gone|3|',
    ]);
    expect(parsed[0]).toMatchObject({
      priority: 10 * 8 + 6,
      hostname: 'hub-1',
      appName: 'feedhub',
      procId: String(process.pid),
      msgId: 'viewchange',
    });
    expect(parsed[5]?.msgId).toBe('view_remove');
    expect(forwarder.stats()).toEqual({
      queued: 0,
      sent: 6,
      dropped: 0,
      truncated: 0,
      connected: true,
    });
  });

  test('tcp stream ends on a frame boundary', async () => {
    const { receiver, port } = await startTcpReceiver();
    const { logger } = captureLogger();
    const forwarder = startForwarder(
      { transport: 'tcp', host: '127.0.0.1', port, facility: 16, severity: 2, appName: 'hub' },
      logger,
    );

    forwarder.send(['ä'.repeat(5000), 'ö']);
    await waitFor('2 messages', () => receiver.messages.length >= 2);
    await forwarder.close(1000);
    await waitFor('receiver connection closed', () => receiver.leftovers.length === 1);

    expect(receiver.leftovers).toEqual([0]);
    expect(parseSyslog(receiver.messages[0] ?? '').text).toBe('ä'.repeat(5000));
    expect(parseSyslog(receiver.messages[1] ?? '')).toMatchObject({
      priority: 16 * 8 + 2,
      appName: 'hub',
      text: 'ö',
    });
  });

  test('tcp delivers in order after late receiver start', async () => {
    const port = await freePort();
    const { logger, records } = captureLogger();
    const forwarder = startForwarder({ transport: 'tcp', host: '127.0.0.1', port }, logger);

    forwarder.send(numbered(1, 20));
    await waitFor('a failed connect', () =>
      records.some((record) => record.msg === 'syslog connect failed, retrying'),
    );
    forwarder.send(numbered(21, 40));
    expect(forwarder.stats()).toMatchObject({ queued: 40, sent: 0, connected: false });

    const { receiver } = await startTcpReceiver(port);
    await waitFor('40 messages', () => receiver.messages.length >= 40);

    expect(receiver.messages.map((message) => parseSyslog(message).text)).toEqual(numbered(1, 40));
    expect(forwarder.stats()).toMatchObject({ queued: 0, sent: 40, dropped: 0, connected: true });
  });

  test('tcp reconnects after receiver closes mid-stream', async () => {
    const { receiver, port } = await startTcpReceiver();
    receiver.endAfter = 7;
    const { logger, records } = captureLogger();
    const forwarder = startForwarder({ transport: 'tcp', host: '127.0.0.1', port }, logger);

    for (let batch = 0; batch < 5; batch += 1) {
      forwarder.send(numbered(batch * 20 + 1, batch * 20 + 20));
      await waitFor(`batch ${batch + 1}`, () => receiver.messages.length >= batch * 20 + 20);
    }

    expect(receiver.frameErrors).toEqual([]);
    expect(receiver.messages.map((message) => parseSyslog(message).text)).toEqual(numbered(1, 100));
    expect(receiver.connections).toBeGreaterThanOrEqual(2);
    expect(records.some((record) => record.msg === 'syslog connection closed, reconnecting')).toBe(
      true,
    );
    expect(forwarder.stats()).toMatchObject({ queued: 0, sent: 100, dropped: 0 });
  });

  test('tcp resends failed writes after reset', async () => {
    const { receiver, port } = await startTcpReceiver();
    let stalled: Socket | undefined;
    // The first connection never reads, so the kernel buffers fill and later writes wait in Node.
    receiver.onAccept = (socket, index) => {
      if (index > 0) return;
      stalled = socket;
      socket.pause();
    };
    const { logger } = captureLogger();
    const forwarder = startForwarder(
      { transport: 'tcp', host: '127.0.0.1', port, maxQueue: 100_000 },
      logger,
    );
    const padding = 'x'.repeat(1000);
    const total = 20_000;
    const lines = Array.from({ length: total }, (_, index) => `${index + 1} ${padding}`);

    forwarder.send(lines);
    let previousSent = -1;
    await waitFor('writes to stall', () => {
      const { sent } = forwarder.stats();
      const unchanged = sent === previousSent;
      previousSent = sent;
      return unchanged && sent > 0 && sent < total;
    });
    stalled?.resetAndDestroy();
    await waitFor('queue to drain', () => forwarder.stats().queued === 0, 20_000);
    await waitFor(
      'last message',
      () =>
        receiver.messages.length > 0 &&
        receiver.messages.at(-1)?.endsWith(`${total} ${padding}`) === true,
    );

    // The reset discards what the kernel had accepted, and every write that failed is sent again.
    const numbers = receiver.messages.map((message) =>
      Number(parseSyslog(message).text.split(' ')[0]),
    );
    const first = numbers[0] ?? 0;
    expect(first).toBeGreaterThan(1);
    expect(numbers).toEqual(Array.from({ length: total - first + 1 }, (_, index) => first + index));
    expect(forwarder.stats()).toMatchObject({ sent: total, dropped: 0, queued: 0 });
  });

  test('tcp reconnects after receiver restart', async () => {
    const first = await startTcpReceiver();
    const { logger } = captureLogger();
    const forwarder = startForwarder(
      { transport: 'tcp', host: '127.0.0.1', port: first.port },
      logger,
    );

    forwarder.send(numbered(1, 10));
    await waitFor('first 10 messages', () => first.receiver.messages.length >= 10);
    await first.receiver.stop();
    await waitFor('disconnect', () => !forwarder.stats().connected);
    forwarder.send(numbered(11, 20));
    const second = await startTcpReceiver(first.port);
    await waitFor('next 10 messages', () => second.receiver.messages.length >= 10);

    expect(second.receiver.messages.map((message) => parseSyslog(message).text)).toEqual(
      numbered(11, 20),
    );
  });

  test('queue overflow drops oldest and counts', async () => {
    const port = await freePort();
    const { logger, records } = captureLogger();
    const forwarder = startForwarder(
      { transport: 'tcp', host: '127.0.0.1', port, maxQueue: 5, reconnectMaxMs: 200 },
      logger,
    );

    forwarder.send(numbered(1, 12));
    forwarder.send(numbered(13, 15));

    expect(forwarder.stats()).toMatchObject({ queued: 5, dropped: 10, sent: 0 });
    await waitFor('drop reports totalling 10', () => {
      const reports = records.filter((record) => record.msg.startsWith('syslog queue full'));
      return reports.reduce((total, record) => total + (record.count ?? 0), 0) === 10;
    });
    const reports = records.filter((record) => record.msg.startsWith('syslog queue full'));
    expect(reports).toHaveLength(2);
    expect(reports[0]).toMatchObject({ count: 7, maxQueue: 5 });

    const { receiver } = await startTcpReceiver(port);
    await waitFor('5 messages', () => receiver.messages.length >= 5);
    expect(receiver.messages.map((message) => parseSyslog(message).text)).toEqual(numbered(11, 15));
  });

  test('close flushes queued messages', async () => {
    const { receiver, port } = await startTcpReceiver();
    const { logger } = captureLogger();
    const forwarder = startForwarder({ transport: 'tcp', host: '127.0.0.1', port }, logger);

    forwarder.send(numbered(1, 500));
    await forwarder.close(5000);
    await waitFor('500 messages', () => receiver.messages.length >= 500);

    expect(receiver.messages.map((message) => parseSyslog(message).text)).toEqual(numbered(1, 500));
    expect(forwarder.stats()).toMatchObject({ queued: 0, sent: 500, connected: false });
  });

  test('close returns within timeout when unreachable', async () => {
    const port = await freePort();
    const { logger, records } = captureLogger();
    const forwarder = startForwarder(
      { transport: 'tcp', host: '127.0.0.1', port, reconnectMaxMs: 10_000 },
      logger,
    );
    forwarder.send(numbered(1, 3));

    const started = Date.now();
    await forwarder.close(200);
    const elapsed = Date.now() - started;

    expect(elapsed).toBeGreaterThanOrEqual(190);
    expect(elapsed).toBeLessThan(1000);
    expect(forwarder.stats()).toMatchObject({ queued: 3, sent: 0, connected: false });
    expect(
      records.some((record) => record.msg === 'syslog forwarder closed with unsent messages'),
    ).toBe(true);
  });

  test('send after close counts drops', async () => {
    const { port } = await startTcpReceiver();
    const { logger, records } = captureLogger();
    const forwarder = startForwarder({ transport: 'tcp', host: '127.0.0.1', port }, logger);
    await forwarder.close(100);

    expect(() => forwarder.send(numbered(1, 2))).not.toThrow();
    expect(forwarder.stats()).toMatchObject({ dropped: 2, queued: 0 });
    expect(
      records.some((record) => record.msg === 'syslog messages sent after close were dropped'),
    ).toBe(true);
  });

  test('send ignores invalid input', async () => {
    const { receiver, port } = await startTcpReceiver();
    const { logger, records } = captureLogger();
    const forwarder = startForwarder({ transport: 'tcp', host: '127.0.0.1', port }, logger);

    expect(() => forwarder.send(null as unknown as string[])).not.toThrow();
    expect(() => forwarder.send(['kept', 42, 'also kept'] as unknown as string[])).not.toThrow();
    await waitFor('2 messages', () => receiver.messages.length >= 2);

    expect(receiver.messages.map((message) => parseSyslog(message).text)).toEqual([
      'kept',
      'also kept',
    ]);
    expect(
      records.some((record) => record.msg === 'syslog send ignored: lines is not an array'),
    ).toBe(true);
    expect(
      records.find((record) => record.msg.startsWith('syslog lines that are not strings')),
    ).toMatchObject({ count: 1 });
  });
});

describe('syslog over UDP', () => {
  test('udp sends one message per datagram', async () => {
    const receiver = new UdpReceiver();
    receivers.push(receiver);
    const port = await receiver.listen();
    const { logger } = captureLogger();
    const forwarder = startForwarder(
      { transport: 'udp', host: '127.0.0.1', port, hostname: 'hub-1' },
      logger,
    );
    const lines = ['CEF:0|a|b|1|add|x|3|', 'CEF:0|a|b|1|add|ünï|3|', 'CEF:0|a|b|1|remove|y|3|'];

    forwarder.send(lines, 'viewchange');
    await waitFor('3 datagrams', () => receiver.datagrams.length >= 3);

    const parsed = receiver.datagrams.map((datagram) => parseSyslog(datagram.toString('utf8')));
    expect(parsed.map((message) => message.text)).toEqual(lines);
    expect(parsed[0]).toMatchObject({ priority: 86, hostname: 'hub-1', msgId: 'viewchange' });
    expect(forwarder.stats()).toMatchObject({ queued: 0, sent: 3, truncated: 0, connected: true });
  });

  test('udp truncates long messages on a character boundary', async () => {
    const receiver = new UdpReceiver();
    receivers.push(receiver);
    const port = await receiver.listen();
    const { logger, records } = captureLogger();
    const forwarder = startForwarder({ transport: 'udp', host: '127.0.0.1', port }, logger);
    const long = `CEF:0|a|b|1|add|long|3|request=${'€'.repeat(3000)}`;

    forwarder.send([long, 'short']);
    await waitFor('2 datagrams', () => receiver.datagrams.length >= 2);

    const datagram = receiver.datagrams[0] ?? Buffer.alloc(0);
    expect(datagram.length).toBeLessThanOrEqual(MAX_UDP_MESSAGE_BYTES);
    expect(datagram.length).toBeGreaterThan(MAX_UDP_MESSAGE_BYTES - 3);
    const text = parseSyslog(datagram.toString('utf8')).text;
    expect(text.includes('\ufffd')).toBe(false);
    expect(long.startsWith(text)).toBe(true);
    expect(parseSyslog(receiver.datagrams[1]?.toString('utf8') ?? '').text).toBe('short');
    expect(forwarder.stats()).toMatchObject({ truncated: 1, sent: 2 });
    expect(
      records.find((record) => record.msg === 'syslog messages truncated to the UDP size limit'),
    ).toMatchObject({ count: 1, maxBytes: MAX_UDP_MESSAGE_BYTES });
  });

  test('udp queues messages while receiver refuses', async () => {
    const port = await freeUdpPort();
    const { logger, records } = captureLogger();
    // The first retry comes 300 ms after the refusal, long after the receiver below is bound.
    const forwarder = startForwarder(
      { transport: 'udp', host: '127.0.0.1', port, reconnectMinMs: 300, reconnectMaxMs: 1000 },
      logger,
    );

    forwarder.send(['lost to ICMP unreachable']);
    await waitFor('the refusal', () =>
      records.some((record) => record.msg === 'syslog connection closed, reconnecting'),
    );
    forwarder.send(['second', 'third']);
    expect(forwarder.stats()).toMatchObject({ queued: 2, connected: false });
    const receiver = new UdpReceiver();
    receivers.push(receiver);
    await receiver.listen(port);
    await waitFor('2 datagrams', () => receiver.datagrams.length >= 2);

    const texts = receiver.datagrams.map((datagram) => parseSyslog(datagram.toString('utf8')).text);
    expect(texts).toEqual(['second', 'third']);
  });
});
