/**
 * The `directory` source kind: files dropped into a directory by another
 * program or by hand. Each new file is read once with the kind that its
 * extension (or the source's `format`) names, then moved to `processed/`, or
 * to `failed/` with the reason in `<name>.error.txt`.
 *
 * By default a dropped file only adds values: a later file withdraws nothing,
 * and values leave through the source's aging. With `snapshot: true` each
 * file is the whole current list: the newest new file is read, and values
 * missing from it are withdrawn as for any complete poll.
 */
import { mkdir, readdir, rename, stat, writeFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

import type { ObjectVersionInput } from '../store/index.js';
import type { JsonSettings } from './json.js';
import type { ReadContext, ReadResult, ReadStats, SourceEntry, SourceKind } from './kinds.js';
import { SourceRejectedError } from './rejected.js';
import type { InvalidExample } from './text-list.js';

/** The formats a dropped file can have. */
export const DROP_FORMATS = ['text-list', 'csv', 'json', 'json-lines', 'stix-bundle'] as const;
export type DropFormat = (typeof DROP_FORMATS)[number];

/** Settings of a `directory` source, resolved from the collection file. */
export interface DirectorySettings {
  /** Absolute path of the drop directory. */
  path: string;
  /** The format of every file. Default: from each file's extension. */
  format?: DropFormat;
  /** True: each file is the whole current list. False: files only add values. */
  snapshot: boolean;
  /** Time in ms between the two looks at a file's size and mtime; a file that changed in between is still being written. */
  settleMs: number;
}

/** Subdirectories that receive read files; they are never read themselves. */
export const PROCESSED_DIR = 'processed';
export const FAILED_DIR = 'failed';

/** The cursor key of the files that the last applied poll read; the next poll moves them to processed/. */
export const READ_FILES_KEY = 'readFiles';

/** Extensions and the format they imply; a `.gz` or `.zip` suffix is looked through. */
const FORMAT_BY_EXTENSION: Record<string, DropFormat> = {
  '.txt': 'text-list',
  '.lst': 'text-list',
  '.list': 'text-list',
  '.netset': 'text-list',
  '.ipset': 'text-list',
  '.csv': 'csv',
  '.tsv': 'csv',
  '.json': 'json',
  '.jsonl': 'json-lines',
  '.ndjson': 'json-lines',
  '.stix': 'stix-bundle',
};

/** Names that a writer uses while a file is incomplete, or that editors leave behind. */
const PARTIAL_NAME = /(^\.|\.(tmp|part|partial|crdownload|swp)$|~$)/i;

/** A file as seen by stat: enough to tell whether it is the same file, unchanged. */
interface FileMark {
  name: string;
  size: number;
  mtimeMs: number;
  ino: number;
}

function sameFile(a: FileMark, b: FileMark): boolean {
  return a.name === b.name && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ino === b.ino;
}

/**
 * Picks the format of a dropped file: the source's `format`, else the
 * extension. A name ending in `.stix.json` is a STIX bundle.
 */
export function dropFormat(name: string, format: DropFormat | undefined): DropFormat | undefined {
  if (format !== undefined) return format;
  let base = name.toLowerCase();
  for (const suffix of ['.gz', '.zip']) {
    if (base.endsWith(suffix)) base = base.slice(0, -suffix.length);
  }
  if (base.endsWith('.stix.json')) return 'stix-bundle';
  return FORMAT_BY_EXTENSION[extname(base)];
}

/**
 * Reads the new files of a drop directory. `kinds` contains the readers of the
 * file formats; it is passed in so that this module does not import the
 * kind table, which lists this kind.
 */
export async function readDirectory(
  context: ReadContext,
  kinds: Readonly<Record<string, SourceKind>>,
): Promise<ReadResult> {
  const { source, logger } = context;
  const settings = source.directory;
  if (!settings) {
    throw new Error(`source ${source.id} has kind directory but no directory settings`);
  }
  const directory = settings.path;
  const info = await stat(directory).catch(() => undefined);
  if (!info?.isDirectory()) {
    throw new Error(`drop directory ${directory} not found; create it or fix path of the source`);
  }
  await mkdir(join(directory, PROCESSED_DIR), { recursive: true });
  await mkdir(join(directory, FAILED_DIR), { recursive: true });

  // Files that the last applied poll read are moved now: only then is it
  // certain that their values were stored.
  const applied = (context.previous?.cursor?.[READ_FILES_KEY] ?? []) as FileMark[];
  for (const mark of applied) {
    const current = await markOf(directory, mark.name);
    if (current !== undefined && sameFile(current, mark)) {
      await moveTo(directory, mark.name, PROCESSED_DIR);
    }
  }

  const ready = await stableFiles(directory, settings.settleMs);
  if (ready.length === 0) return { kind: 'not-modified' };

  // Oldest first, so that a later drop's values are the ones seen last.
  ready.sort((a, b) => a.mtimeMs - b.mtimeMs || a.name.localeCompare(b.name));
  const reads: { mark: FileMark; result: Extract<ReadResult, { kind: 'data' }> }[] = [];
  const failures: string[] = [];
  const failed = new Set<string>();
  const order = settings.snapshot ? [...ready].reverse() : ready;
  for (const mark of order) {
    const outcome = await readFile(context, kinds, mark);
    if (typeof outcome === 'string') {
      failures.push(`${mark.name}: ${outcome}`);
      failed.add(mark.name);
      await fail(directory, mark.name, outcome);
      logger.warn({ file: mark.name, reason: outcome }, 'dropped file failed; moved to failed/');
      continue;
    }
    reads.push({ mark, result: outcome });
    if (settings.snapshot) break;
  }

  if (settings.snapshot && reads.length > 0) {
    // The files newer than the snapshot that was read have failed, so the
    // rest are older and superseded by it.
    const newest = reads[0]!.mark;
    for (const mark of ready) {
      if (mark === newest || failed.has(mark.name)) continue;
      await moveTo(directory, mark.name, PROCESSED_DIR);
      logger.info(
        { file: mark.name, snapshot: newest.name },
        'dropped file superseded by a newer snapshot; moved to processed/',
      );
    }
  }

  if (reads.length === 0) {
    throw new SourceRejectedError(
      `every new file of ${directory} failed and was moved to ${FAILED_DIR}/: ${failures.join('; ')}`,
    );
  }
  logger.info(
    { count: reads.length, failed: failures.length, files: reads.map((read) => read.mark.name) },
    'dropped files read',
  );
  const merged = merge(reads.map((read) => read.result));
  merged.stats.filesFailed = failures.length;
  return {
    ...merged,
    complete: settings.snapshot,
    cursor: { [READ_FILES_KEY]: reads.map((read) => read.mark) },
  };
}

/** Lists the regular files that keep their size and mtime over `settleMs`. */
async function stableFiles(directory: string, settleMs: number): Promise<FileMark[]> {
  const names = (await readdir(directory, { withFileTypes: true }))
    .filter((entry) => entry.isFile() && !PARTIAL_NAME.test(entry.name))
    .map((entry) => entry.name);
  const first = await Promise.all(names.map((name) => markOf(directory, name)));
  if (first.every((mark) => mark === undefined)) return [];
  await new Promise((resolve) => setTimeout(resolve, settleMs));
  const second = await Promise.all(names.map((name) => markOf(directory, name)));
  return second.filter(
    (mark, index): mark is FileMark =>
      mark !== undefined && first[index] !== undefined && sameFile(mark, first[index]),
  );
}

async function markOf(directory: string, name: string): Promise<FileMark | undefined> {
  try {
    const info = await stat(join(directory, name));
    if (!info.isFile()) return undefined;
    return { name, size: info.size, mtimeMs: info.mtimeMs, ino: info.ino };
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** Reads one file with the reader of its format; returns the reason when it is unusable. */
async function readFile(
  context: ReadContext,
  kinds: Readonly<Record<string, SourceKind>>,
  mark: FileMark,
): Promise<Extract<ReadResult, { kind: 'data' }> | string> {
  const { source } = context;
  const settings = source.directory!;
  const format = dropFormat(mark.name, settings.format);
  if (format === undefined) {
    return `the format of ${mark.name} is unknown; name it .txt, .csv, .json, .jsonl or .stix.json, or set format on the source`;
  }
  if (format === 'csv' && source.csv === undefined) {
    return 'a CSV file needs the columns key on the source, which names the columns that hold values';
  }
  if ((format === 'json' || format === 'json-lines') && source.json === undefined) {
    return 'a JSON file needs the expression or preset key on the source, which picks the values';
  }
  const kind = format === 'json-lines' ? 'json' : format;
  const reader = kinds[kind];
  if (reader === undefined) return `no reader for format ${format}`;
  const json: JsonSettings | undefined = source.json && {
    ...source.json,
    format: format === 'json-lines' ? 'lines' : 'document',
  };

  try {
    const result = await reader.read({
      ...context,
      source: {
        ...source,
        kind,
        url: pathToFileURL(join(settings.path, mark.name)).href,
        ...(json === undefined ? {} : { json }),
      },
      previous: undefined,
      unchangedDigest: undefined,
    });
    if (result.kind !== 'data') return `reading it returned ${result.kind}`;
    return result;
  } catch (error) {
    return (error as Error).message;
  }
}

/** Moves a file into a subdirectory, adding -1, -2, ... before the extension when the name is taken. */
async function moveTo(directory: string, name: string, subdirectory: string): Promise<string> {
  const extension = extname(name);
  const stem = name.slice(0, name.length - extension.length);
  for (let n = 0; ; n += 1) {
    const target = join(directory, subdirectory, n === 0 ? name : `${stem}-${n}${extension}`);
    try {
      await stat(target);
      continue;
    } catch (error) {
      if ((error as { code?: unknown }).code !== 'ENOENT') throw error;
    }
    await rename(join(directory, name), target);
    return target;
  }
}

async function fail(directory: string, name: string, reason: string): Promise<void> {
  const target = await moveTo(directory, name, FAILED_DIR);
  await writeFile(`${target}.error.txt`, `${new Date().toISOString()} ${name}: ${reason}\n`);
}

const MAX_EXAMPLES = 5;

/** Joins the reads of several files: each value once, counts summed. */
function merge(results: Extract<ReadResult, { kind: 'data' }>[]): {
  kind: 'data';
  entries: SourceEntry[];
  objects: ObjectVersionInput[];
  stats: ReadStats;
} {
  const seen = new Set<string>();
  const entries: SourceEntry[] = [];
  const objects: ObjectVersionInput[] = [];
  const stats: ReadStats = { valid: 0, invalid: 0, duplicates: 0 };
  const examples: InvalidExample[] = [];
  for (const result of results) {
    for (const entry of result.entries) {
      const key = `${entry.type}\u0000${entry.value}`;
      if (seen.has(key)) {
        stats.duplicates = (stats.duplicates ?? 0) + 1;
        continue;
      }
      seen.add(key);
      entries.push(entry);
    }
    objects.push(...result.objects);
    for (const [key, value] of Object.entries(result.stats)) {
      if (typeof value !== 'number' || key === 'valid') continue;
      const counts = stats as unknown as Record<string, number | undefined>;
      counts[key] = (counts[key] ?? 0) + value;
    }
    examples.push(...(result.stats.invalidExamples ?? []));
  }
  stats.files = results.length;
  stats.valid = entries.length;
  if (examples.length > 0) stats.invalidExamples = examples.slice(0, MAX_EXAMPLES);
  return { kind: 'data', entries, objects, stats };
}
