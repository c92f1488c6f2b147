/**
 * Syslog forwarder for view changes. Each line a caller hands over becomes
 * one RFC 5424 message, sent to a SIEM over TCP with octet-counting framing
 * (RFC 6587 section 3.4.1) or over UDP (RFC 5426, one message per datagram).
 * Messages wait in a bounded in-memory queue while the receiver is down.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { lookup } from 'node:dns';
import { connect as connectTcp } from 'node:net';
import { hostname as osHostname } from 'node:os';
import { performance } from 'node:perf_hooks';

import type { Logger } from 'pino';

export interface SyslogOptions {
  /** `tcp` keeps one connection open and frames messages by octet count, while `udp` sends one datagram per message. */
  transport: 'tcp' | 'udp';
  /** Host name or IP address of the syslog receiver. */
  host: string;
  port: number;
  /** APP-NAME header field: 1 to 48 printable US-ASCII characters. Default `feedhub`. */
  appName?: string;
  /** HOSTNAME header field: 1 to 255 printable US-ASCII characters. Default: `os.hostname()`, cleaned the same way as a MSGID. */
  hostname?: string;
  /** Facility code, 0-23. Default 10, which RFC 5424 names "security/authorization messages" (`authpriv`), since the lines are security data. */
  facility?: number;
  /** Severity code, 0-7. Default 6 (informational). */
  severity?: number;
  /** Maximum number of messages waiting to be sent. Beyond it the oldest are dropped. Default 10000. */
  maxQueue?: number;
  /** Delay before the first reconnect attempt, in milliseconds. Default 500. */
  reconnectMinMs?: number;
  /** Ceiling of the reconnect delay, and the minimum interval between two drop reports in the log, in milliseconds. Default 30000. */
  reconnectMaxMs?: number;
  /** MSGID header field for `send` calls that pass none: 1 to 32 printable US-ASCII characters. Default nil (`-`). */
  msgId?: string;
}

/** Counters of a forwarder since it was created. */
export interface SyslogStats {
  /** Messages waiting in the queue, plus those written to the socket whose write has not completed. */
  queued: number;
  /** Messages the operating system accepted for sending. TCP and UDP have no receipt, so this is not proof of delivery. */
  sent: number;
  /** Messages dropped because the queue was full or because `send` was called after `close`. */
  dropped: number;
  /** UDP messages cut to `MAX_UDP_MESSAGE_BYTES`. */
  truncated: number;
  /** Whether the TCP connection is open, or the UDP socket is connected, which does not show that the receiver is up. */
  connected: boolean;
}

export interface SyslogForwarder {
  /**
   * Queues one message per line without waiting, and never throws. `msgId` overrides the MSGID option,
   * with characters outside printable US-ASCII replaced by `_` and the value cut to 32 characters.
   */
  send(lines: string[], msgId?: string): void;
  stats(): SyslogStats;
  /**
   * Stops accepting messages, sends what it can within `timeoutMs` (default 5000), then closes the socket.
   * Resolves by the deadline even when the receiver is unreachable. Messages still queued then are lost.
   */
  close(timeoutMs?: number): Promise<void>;
}

/** Every problem found in the forwarder options, reported together. */
export class SyslogOptionsError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid syslog options:\n  ${problems.join('\n  ')}`);
    this.name = 'SyslogOptionsError';
  }
}

/**
 * Largest UDP message this forwarder sends, in bytes. RFC 5426 section 3.2 states that every receiver
 * SHOULD accept 2048 octets, while IPv4 receivers MUST accept only 480 and IPv6 receivers 1180.
 * A 2048-byte datagram is fragmented on a 1500-byte MTU, so use TCP where losing a fragment matters.
 */
export const MAX_UDP_MESSAGE_BYTES = 2048;

const DEFAULT_APP_NAME = 'feedhub';
const DEFAULT_FACILITY = 10;
const DEFAULT_SEVERITY = 6;
const DEFAULT_MAX_QUEUE = 10_000;
const DEFAULT_RECONNECT_MIN_MS = 500;
const DEFAULT_RECONNECT_MAX_MS = 30_000;
const DEFAULT_CLOSE_TIMEOUT_MS = 5_000;

/** A TCP connect that takes longer is abandoned and retried after the backoff delay. */
const CONNECT_TIMEOUT_MS = 10_000;
/** Idle time before TCP keepalive probes start, so a receiver that vanished without a FIN is noticed. */
const KEEPALIVE_DELAY_MS = 60_000;

/** Maximum lengths of the RFC 5424 header fields (section 6). */
const HEADER_FIELD_MAX = { hostname: 255, appName: 48, procId: 128, msgId: 32 } as const;
const NIL = '-';
const PRINTABLE_ASCII = /^[\x21-\x7e]+$/;

// ---------------------------------------------------------------------------
// Message format

/** The values of one RFC 5424 message. Header fields must already be valid, for example cleaned by `toHeaderField`. */
export interface SyslogMessageFields {
  /** PRI value: facility * 8 + severity. */
  priority: number;
  /** Microseconds since the Unix epoch. */
  timestampMicros: number;
  hostname: string;
  appName: string;
  procId: string;
  msgId: string;
  /** MSG text, sent as UTF-8. */
  text: string;
}

/**
 * Builds `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG` as bytes (RFC 5424 section 6).
 * MSG is UTF-8 without the byte order mark, because CEF parsers expect the MSG to start with
 * `CEF:`. Under RFC 5424 section 6.4 that makes it MSG-ANY, an unmarked encoding.
 * An empty text leaves out MSG and the space before it.
 */
export function formatSyslogMessage(fields: SyslogMessageFields): Buffer {
  const header = [
    `<${fields.priority}>1`,
    formatSyslogTimestamp(fields.timestampMicros),
    fields.hostname,
    fields.appName,
    fields.procId,
    fields.msgId,
    NIL,
  ].join(' ');
  if (fields.text === '') return Buffer.from(header, 'ascii');
  return Buffer.from(`${header} ${fields.text}`, 'utf8');
}

/** Formats a time as an RFC 5424 TIMESTAMP in UTC with six fraction digits, e.g. `2023-11-14T22:13:20.123456Z`. */
export function formatSyslogTimestamp(micros: number): string {
  const millis = Math.floor(micros / 1000);
  const subMillis = String(micros - millis * 1000).padStart(3, '0');
  const iso = new Date(millis).toISOString();
  return `${iso.slice(0, -1)}${subMillis}Z`;
}

/**
 * Cleans a value for an RFC 5424 header field: each character outside printable US-ASCII
 * (33-126) becomes `_`, the result is cut to `maxLength` characters, and an empty value
 * becomes the nil value `-`.
 */
export function toHeaderField(value: string, maxLength: number): string {
  const cleaned = value.replace(/[^\x21-\x7e]/gu, '_').slice(0, maxLength);
  return cleaned === '' ? NIL : cleaned;
}

/** Cuts a buffer to at most `maxBytes`, backing off to the start of a UTF-8 character so none is split. */
export function truncateUtf8(bytes: Buffer, maxBytes: number): Buffer {
  if (bytes.length <= maxBytes) return bytes;
  let end = maxBytes;
  // Bytes 10xxxxxx continue a character, so the cut moves back to the byte that starts it.
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end -= 1;
  return bytes.subarray(0, end);
}

/**
 * Returns the current time in microseconds since the Unix epoch. The sub-millisecond digits come
 * from the monotonic clock. That clock drifts from the wall clock after a clock step or a suspend,
 * so it is used only while the two agree within 2 ms, and otherwise the microseconds are 000.
 */
function nowMicros(): number {
  const wallMs = Date.now();
  const monotonicMs = performance.timeOrigin + performance.now();
  if (Math.abs(monotonicMs - wallMs) < 2) return Math.floor(monotonicMs * 1000);
  return wallMs * 1000;
}

/**
 * Returns the delay before reconnect attempt `attempt` (0 for the first). The ceiling doubles from
 * `minMs` up to `maxMs`, and the delay is drawn uniformly from the upper half of the ceiling, never
 * below `minMs`, so hubs that lost the same receiver do not reconnect in step.
 */
export function reconnectDelayMs(
  attempt: number,
  minMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 52));
  const floor = Math.max(minMs, ceiling / 2);
  return Math.round(floor + (ceiling - floor) * random());
}

// ---------------------------------------------------------------------------
// Options

interface ResolvedOptions {
  transport: 'tcp' | 'udp';
  host: string;
  port: number;
  appName: string;
  hostname: string;
  priority: number;
  maxQueue: number;
  reconnectMinMs: number;
  reconnectMaxMs: number;
  msgId: string;
}

function checkInteger(
  problems: string[],
  name: string,
  value: unknown,
  min: number,
  max: number,
): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    problems.push(
      `${name} ${JSON.stringify(value)} is invalid: use an integer from ${min} to ${max}`,
    );
  }
}

function checkHeaderField(
  problems: string[],
  name: string,
  value: unknown,
  maxLength: number,
): void {
  if (typeof value !== 'string' || !PRINTABLE_ASCII.test(value) || value.length > maxLength) {
    problems.push(
      `${name} ${JSON.stringify(value)} is invalid: use 1 to ${maxLength} printable US-ASCII characters without spaces`,
    );
  }
}

/** Applies the defaults and checks every option, throwing `SyslogOptionsError` with all problems found. */
function resolveOptions(options: SyslogOptions): ResolvedOptions {
  const problems: string[] = [];
  const resolved: ResolvedOptions = {
    transport: options.transport,
    host: options.host,
    port: options.port,
    appName: options.appName ?? DEFAULT_APP_NAME,
    hostname: options.hostname ?? toHeaderField(osHostname(), HEADER_FIELD_MAX.hostname),
    priority: (options.facility ?? DEFAULT_FACILITY) * 8 + (options.severity ?? DEFAULT_SEVERITY),
    maxQueue: options.maxQueue ?? DEFAULT_MAX_QUEUE,
    reconnectMinMs: options.reconnectMinMs ?? DEFAULT_RECONNECT_MIN_MS,
    reconnectMaxMs: options.reconnectMaxMs ?? DEFAULT_RECONNECT_MAX_MS,
    msgId: options.msgId ?? NIL,
  };

  if (resolved.transport !== 'tcp' && resolved.transport !== 'udp') {
    problems.push(`transport ${JSON.stringify(resolved.transport)} is invalid: use "tcp" or "udp"`);
  }
  if (typeof resolved.host !== 'string' || resolved.host.trim() === '') {
    problems.push(
      `host ${JSON.stringify(resolved.host)} is invalid: set the host name or IP address of the syslog receiver`,
    );
  }
  checkInteger(problems, 'port', resolved.port, 1, 65535);
  checkHeaderField(problems, 'appName', resolved.appName, HEADER_FIELD_MAX.appName);
  checkHeaderField(problems, 'hostname', resolved.hostname, HEADER_FIELD_MAX.hostname);
  checkHeaderField(problems, 'msgId', resolved.msgId, HEADER_FIELD_MAX.msgId);
  checkInteger(problems, 'facility', options.facility ?? DEFAULT_FACILITY, 0, 23);
  checkInteger(problems, 'severity', options.severity ?? DEFAULT_SEVERITY, 0, 7);
  checkInteger(problems, 'maxQueue', resolved.maxQueue, 1, Number.MAX_SAFE_INTEGER);
  checkInteger(problems, 'reconnectMinMs', resolved.reconnectMinMs, 1, 2 ** 31 - 1);
  checkInteger(problems, 'reconnectMaxMs', resolved.reconnectMaxMs, 1, 2 ** 31 - 1);
  const bothDelaysValid =
    Number.isInteger(resolved.reconnectMinMs) && Number.isInteger(resolved.reconnectMaxMs);
  if (bothDelaysValid && resolved.reconnectMaxMs < resolved.reconnectMinMs) {
    problems.push(
      `reconnectMaxMs ${resolved.reconnectMaxMs} is below reconnectMinMs ${resolved.reconnectMinMs}: raise reconnectMaxMs or lower reconnectMinMs`,
    );
  }

  if (problems.length > 0) throw new SyslogOptionsError(problems);
  return resolved;
}

// ---------------------------------------------------------------------------
// Queue and rate-limited reports

/** FIFO of formatted messages that drops its oldest entries when it exceeds its capacity. */
class MessageQueue {
  private items: (Buffer | undefined)[] = [];
  private head = 0;

  constructor(private readonly capacity: number) {}

  get length(): number {
    return this.items.length - this.head;
  }

  /** Appends a message and returns how many of the oldest messages were dropped for it (0 or 1). */
  push(message: Buffer): number {
    this.items.push(message);
    if (this.length <= this.capacity) return 0;
    this.shift();
    return 1;
  }

  shift(): Buffer | undefined {
    const message = this.items[this.head];
    if (message === undefined) return undefined;
    this.items[this.head] = undefined;
    this.head += 1;
    // Compacting once the consumed prefix is the larger half keeps shift O(1) amortised.
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return message;
  }

  /** Puts messages back at the front in their order and returns how many of the oldest were dropped to stay within capacity. */
  unshiftAll(messages: Buffer[]): number {
    if (messages.length === 0) return 0;
    this.items = [...messages, ...this.items.slice(this.head)];
    this.head = 0;
    const excess = this.length - this.capacity;
    if (excess <= 0) return 0;
    this.items = this.items.slice(excess);
    return excess;
  }
}

/**
 * Counts a repeated event and logs the count at most once per interval, so a flood costs one log
 * line per interval. `flush` logs at once, which `close` uses for the final count.
 */
class RateLimitedWarning {
  private pending = 0;
  private lastLoggedAt = Number.NEGATIVE_INFINITY;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly logger: Logger,
    private readonly intervalMs: number,
    private readonly message: string,
    private readonly fields: Record<string, unknown>,
  ) {}

  add(count: number): void {
    if (count === 0) return;
    this.pending += count;
    if (this.timer !== undefined) return;
    const waitMs = this.lastLoggedAt + this.intervalMs - performance.now();
    if (waitMs <= 0) {
      this.flush();
      return;
    }
    this.timer = setTimeout(() => this.flush(), waitMs);
    this.timer.unref();
  }

  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending === 0) return;
    this.logger.warn({ ...this.fields, count: this.pending }, this.message);
    this.pending = 0;
    this.lastLoggedAt = performance.now();
  }
}

// ---------------------------------------------------------------------------
// Links: one TCP connection or one connected UDP socket

interface LinkHandlers {
  open(): void;
  /** The link accepts writes again after `send` returned false. */
  drain(): void;
  /** Called exactly once. `wasOpen` is false when the connection was never established. */
  closed(err: Error | undefined, wasOpen: boolean): void;
}

interface Link {
  /** Whether `send` may be called now: open, and not closing. */
  readonly writable: boolean;
  /**
   * Writes one message. `done` runs once the operating system accepted the bytes, or with the error.
   * Returns false when the caller must wait for `drain` before the next write.
   */
  send(message: Buffer, done: (err?: Error | null) => void): boolean;
  destroy(err?: Error): void;
}

function openTcpLink(host: string, port: number, handlers: LinkHandlers): Link {
  const socket = connectTcp({ host, port });
  let open = false;
  let failure: Error | undefined;

  socket.setTimeout(CONNECT_TIMEOUT_MS, () => {
    if (!open) {
      socket.destroy(
        new Error(`connect to ${host}:${port} timed out after ${CONNECT_TIMEOUT_MS} ms`),
      );
    }
  });
  socket.once('connect', () => {
    open = true;
    socket.setTimeout(0);
    socket.setKeepAlive(true, KEEPALIVE_DELAY_MS);
    // Syslog over TCP is one-way (RFC 6587). Reading only discards stray bytes, so that close() sends FIN, not RST.
    socket.resume();
    handlers.open();
  });
  socket.on('error', (err) => {
    failure = err;
  });
  socket.on('drain', () => handlers.drain());
  socket.once('close', () => handlers.closed(failure, open));

  return {
    get writable() {
      // After the receiver's FIN, Node ends our side too, so `socket.writable` turns false.
      return open && socket.writable;
    },
    send(message, done) {
      const prefix = Buffer.from(`${message.length} `, 'ascii');
      return socket.write(Buffer.concat([prefix, message]), done);
    },
    destroy(err) {
      socket.destroy(err);
    },
  };
}

function openUdpLink(host: string, port: number, handlers: LinkHandlers): Link {
  let socket: UdpSocket | undefined;
  let open = false;
  let closing = false;
  let finished = false;
  let failure: Error | undefined;

  const finish = (): void => {
    if (finished) return;
    finished = true;
    handlers.closed(failure, open);
  };
  const closeSocket = (): void => {
    if (closing) return;
    closing = true;
    if (socket === undefined) finish();
    else socket.close();
  };

  // The address family picks the socket type, so a host name that resolves to IPv6 works too.
  lookup(host, (lookupError, address, family) => {
    if (closing) return;
    if (lookupError) {
      failure = lookupError;
      closeSocket();
      return;
    }
    const udp = createSocket(family === 6 ? 'udp6' : 'udp4');
    socket = udp;
    // On Linux a connected UDP socket reports an ICMP port unreachable from the receiver as
    // ECONNREFUSED here. The datagram that caused it is lost, and later ones wait out the backoff.
    udp.on('error', (err) => {
      failure = err;
      closeSocket();
    });
    udp.once('close', finish);
    udp.connect(port, address, () => {
      open = true;
      handlers.open();
    });
  });

  return {
    get writable() {
      return open && !closing;
    },
    send(message, done) {
      // One datagram in flight at a time, so a failed send cannot be overtaken by a later one.
      socket?.send(message, (err) => {
        done(err);
        if (!err) handlers.drain();
      });
      return false;
    },
    destroy(err) {
      failure ??= err;
      closeSocket();
    },
  };
}

// ---------------------------------------------------------------------------
// Forwarder

interface InflightMessage {
  message: Buffer;
  /** Whether the write completed or the message went back to the queue. A callback after that is ignored. */
  settled: boolean;
}

class Forwarder implements SyslogForwarder {
  private readonly logger: Logger;
  private readonly queue: MessageQueue;
  private readonly procId = String(process.pid);
  /** Messages written to the current link whose write has not completed, oldest first. */
  private inflight: InflightMessage[] = [];
  private link: Link | undefined;
  private waitingForDrain = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private attempt = 0;
  /** When the current link opened, from `performance.now()`. */
  private linkOpenedAt = 0;
  private sent = 0;
  private dropped = 0;
  private truncated = 0;
  private closing = false;
  private closed = false;
  private closePromise: Promise<void> | undefined;
  private idleWaiter: (() => void) | undefined;
  private readonly dropReport: RateLimitedWarning;
  private readonly truncationReport: RateLimitedWarning;
  private readonly lateSendReport: RateLimitedWarning;
  private readonly invalidLineReport: RateLimitedWarning;

  constructor(
    private readonly options: ResolvedOptions,
    logger: Logger,
  ) {
    const { transport, host, port, maxQueue, reconnectMaxMs } = options;
    this.logger = logger.child({ component: 'syslog', transport, host, port });
    this.queue = new MessageQueue(maxQueue);
    this.dropReport = new RateLimitedWarning(
      this.logger,
      reconnectMaxMs,
      'syslog queue full, oldest messages dropped',
      { maxQueue },
    );
    this.truncationReport = new RateLimitedWarning(
      this.logger,
      reconnectMaxMs,
      'syslog messages truncated to the UDP size limit',
      { maxBytes: MAX_UDP_MESSAGE_BYTES },
    );
    this.lateSendReport = new RateLimitedWarning(
      this.logger,
      reconnectMaxMs,
      'syslog messages sent after close were dropped',
      {},
    );
    this.invalidLineReport = new RateLimitedWarning(
      this.logger,
      reconnectMaxMs,
      'syslog lines that are not strings were skipped',
      {},
    );
    this.logger.info({ maxQueue }, 'syslog forwarder starting');
    this.connect();
  }

  send(lines: string[], msgId?: string): void {
    try {
      this.enqueue(lines, msgId);
      this.pump();
    } catch (err) {
      this.logger.error({ err }, 'syslog send failed');
    }
  }

  stats(): SyslogStats {
    return {
      queued: this.pendingCount(),
      sent: this.sent,
      dropped: this.dropped,
      truncated: this.truncated,
      connected: this.link?.writable ?? false,
    };
  }

  close(timeoutMs = DEFAULT_CLOSE_TIMEOUT_MS): Promise<void> {
    this.closePromise ??= this.shutdown(timeoutMs);
    return this.closePromise;
  }

  private enqueue(lines: string[], msgId: string | undefined): void {
    if (!Array.isArray(lines)) {
      this.logger.error({ type: typeof lines }, 'syslog send ignored: lines is not an array');
      return;
    }
    if (this.closing) {
      this.dropped += lines.length;
      this.lateSendReport.add(lines.length);
      return;
    }

    const fields = {
      priority: this.options.priority,
      timestampMicros: nowMicros(),
      hostname: this.options.hostname,
      appName: this.options.appName,
      procId: this.procId,
      msgId:
        msgId === undefined ? this.options.msgId : toHeaderField(msgId, HEADER_FIELD_MAX.msgId),
    };
    let dropped = 0;
    let truncated = 0;
    let invalid = 0;
    for (const line of lines) {
      if (typeof line !== 'string') {
        invalid += 1;
        continue;
      }
      let message = formatSyslogMessage({ ...fields, text: line });
      if (this.options.transport === 'udp' && message.length > MAX_UDP_MESSAGE_BYTES) {
        message = truncateUtf8(message, MAX_UDP_MESSAGE_BYTES);
        truncated += 1;
      }
      dropped += this.queue.push(message);
    }

    this.recordDrops(dropped);
    this.truncated += truncated;
    this.truncationReport.add(truncated);
    this.invalidLineReport.add(invalid);
  }

  private recordDrops(count: number): void {
    this.dropped += count;
    this.dropReport.add(count);
  }

  private pendingCount(): number {
    return this.queue.length + this.inflight.length;
  }

  private connect(): void {
    this.reconnectTimer = undefined;
    const { transport, host, port } = this.options;
    const handlers: LinkHandlers = {
      open: () => this.onLinkOpen(link),
      drain: () => this.onLinkDrain(link),
      closed: (err, wasOpen) => this.onLinkClosed(link, err, wasOpen),
    };
    const link =
      transport === 'tcp' ? openTcpLink(host, port, handlers) : openUdpLink(host, port, handlers);
    this.link = link;
  }

  private onLinkOpen(link: Link): void {
    if (link !== this.link) return;
    this.linkOpenedAt = performance.now();
    this.logger.info({ queued: this.pendingCount() }, 'syslog connection open');
    this.pump();
  }

  private onLinkDrain(link: Link): void {
    if (link !== this.link) return;
    this.waitingForDrain = false;
    this.pump();
  }

  /** Writes queued messages in order until the queue is empty or the link needs a drain. */
  private pump(): void {
    const link = this.link;
    while (link !== undefined && link.writable && !this.waitingForDrain) {
      const message = this.queue.shift();
      if (message === undefined) return;
      const entry: InflightMessage = { message, settled: false };
      this.inflight.push(entry);
      const mayContinue = link.send(message, (err) => this.onWritten(link, entry, err));
      if (!mayContinue) this.waitingForDrain = true;
    }
  }

  private onWritten(link: Link, entry: InflightMessage, err: Error | null | undefined): void {
    if (entry.settled) return;
    if (err) {
      // The link reports its close next, and onLinkClosed puts this message back in the queue.
      link.destroy(err);
      return;
    }
    entry.settled = true;
    const index = this.inflight[0] === entry ? 0 : this.inflight.indexOf(entry);
    if (index >= 0) this.inflight.splice(index, 1);
    this.sent += 1;
    if (this.pendingCount() === 0) this.idleWaiter?.();
  }

  private onLinkClosed(link: Link, err: Error | undefined, wasOpen: boolean): void {
    if (link !== this.link) return;
    this.link = undefined;
    this.waitingForDrain = false;

    // Writes that never completed go back to the front of the queue, in their original order.
    const unsent: Buffer[] = [];
    for (const entry of this.inflight) {
      if (entry.settled) continue;
      entry.settled = true;
      unsent.push(entry.message);
    }
    this.inflight = [];
    this.recordDrops(this.queue.unshiftAll(unsent));
    if (this.closed) return;

    // Only a link that lasted a full backoff ceiling resets the backoff. A receiver that accepts and
    // drops at once, or a UDP port that triggers ICMP port unreachable, keeps the delay growing.
    if (wasOpen && performance.now() - this.linkOpenedAt >= this.options.reconnectMaxMs) {
      this.attempt = 0;
    }
    const delayMs = reconnectDelayMs(
      this.attempt,
      this.options.reconnectMinMs,
      this.options.reconnectMaxMs,
    );
    const fields = { err, attempt: this.attempt + 1, delayMs, queued: this.pendingCount() };
    if (wasOpen) this.logger.warn(fields, 'syslog connection closed, reconnecting');
    else this.logger.warn(fields, 'syslog connect failed, retrying');
    this.attempt += 1;
    this.reconnectTimer = setTimeout(() => this.connect(), delayMs);
    this.reconnectTimer.unref();
  }

  private async shutdown(timeoutMs: number): Promise<void> {
    this.closing = true;
    if (this.pendingCount() > 0) {
      if (this.link === undefined) {
        // Waiting out a long backoff delay would waste the flush time, so try once more right away.
        clearTimeout(this.reconnectTimer);
        this.connect();
      }
      await this.waitUntilIdle(timeoutMs);
    }

    this.closed = true;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    // Every completed write is already in the kernel, which still sends it after the socket closes.
    this.link?.destroy();
    this.dropReport.flush();
    this.truncationReport.flush();
    this.lateSendReport.flush();
    this.invalidLineReport.flush();

    const fields = { sent: this.sent, dropped: this.dropped, unsent: this.pendingCount() };
    if (fields.unsent > 0) this.logger.warn(fields, 'syslog forwarder closed with unsent messages');
    else this.logger.info(fields, 'syslog forwarder closed');
  }

  private waitUntilIdle(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const finish = (): void => {
        clearTimeout(timer);
        this.idleWaiter = undefined;
        resolve();
      };
      const timer = setTimeout(finish, timeoutMs);
      this.idleWaiter = finish;
    });
  }
}

/**
 * Creates a forwarder and starts connecting to the receiver at once.
 * Throws `SyslogOptionsError` listing every invalid option.
 * NOTE: neither TCP nor UDP syslog has receipts, so messages the kernel accepted just before the
 * receiver reset the connection are lost without notice. Only writes that failed are sent again.
 */
export function createSyslogForwarder(options: SyslogOptions, logger: Logger): SyslogForwarder {
  return new Forwarder(resolveOptions(options), logger);
}
