import Router from '@koa/router';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

import { GUARD_RULES } from '../processing/index.js';
import type { PollReport } from '../sources/index.js';
import type { ViewBuildReport } from '../views/index.js';

/** The counts of a run report that become per-source gauges of the last poll. */
const LAST_POLL_COUNTS = [
  'bytes',
  'lines',
  'valid',
  'invalid',
  'created',
  'refreshed',
  'reactivated',
  'missed',
  'withdrawn',
  'merged',
  'expired',
  'allowListed',
  'split',
] as const;

/** Prometheus metrics of polls, fed from run reports. */
export class PollMetrics {
  readonly registry = new Registry();
  private readonly polls: Counter<'collection' | 'source' | 'outcome'>;
  private readonly duration: Histogram<'collection' | 'source'>;
  private readonly lastCounts: Gauge<'collection' | 'source' | 'count'>;
  private readonly refused: Counter<'collection' | 'source' | 'rule'>;
  private readonly plausible: Gauge<'collection' | 'source'>;
  private readonly lastSuccess: Gauge<'collection' | 'source'>;
  private readonly renders: Counter<'collection' | 'view' | 'outcome'>;
  private readonly viewEntries: Gauge<'collection' | 'view'>;
  private readonly viewCut: Gauge<'collection' | 'view'>;
  private readonly viewDropped: Gauge<'collection' | 'view'>;
  private readonly renderDuration: Histogram<'collection' | 'view'>;

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'feedhub_' });
    const registers = [this.registry];
    this.polls = new Counter({
      name: 'feedhub_polls_total',
      help: 'Polls run, by outcome (applied, not-modified, failed).',
      labelNames: ['collection', 'source', 'outcome'],
      registers,
    });
    this.duration = new Histogram({
      name: 'feedhub_poll_duration_seconds',
      help: 'Duration of polls, in seconds.',
      labelNames: ['collection', 'source'],
      buckets: [0.1, 0.5, 1, 5, 15, 60, 300],
      registers,
    });
    this.lastCounts = new Gauge({
      name: 'feedhub_last_poll_entries',
      help: 'Counts of the last applied poll of a source, by count name (valid, invalid, created, withdrawn, allowListed, ...).',
      labelNames: ['collection', 'source', 'count'],
      registers,
    });
    this.refused = new Counter({
      name: 'feedhub_refused_values_total',
      help: 'Values that a sanity guard rejected, by rule.',
      labelNames: ['collection', 'source', 'rule'],
      registers,
    });
    this.plausible = new Gauge({
      name: 'feedhub_last_poll_plausible',
      help: '1 when the last applied poll was plausible, 0 when it was held for a fall in its valid count.',
      labelNames: ['collection', 'source'],
      registers,
    });
    this.lastSuccess = new Gauge({
      name: 'feedhub_last_success_timestamp_seconds',
      help: 'Unix time of the last poll that did not fail.',
      labelNames: ['collection', 'source'],
      registers,
    });
    this.renders = new Counter({
      name: 'feedhub_view_renders_total',
      help: 'Renders of views, by outcome (rendered, failed); a failed render leaves the previous one in service.',
      labelNames: ['collection', 'view', 'outcome'],
      registers,
    });
    this.viewEntries = new Gauge({
      name: 'feedhub_view_entries',
      help: 'Entries in the last render of a view.',
      labelNames: ['collection', 'view'],
      registers,
    });
    this.viewCut = new Gauge({
      name: 'feedhub_view_cut_entries',
      help: 'Values left out of the last render of a view because it reached its maxEntries.',
      labelNames: ['collection', 'view'],
      registers,
    });
    this.viewDropped = new Gauge({
      name: 'feedhub_view_dropped_entries',
      help: 'Entries that the format of a view could not express in its last render (see the build log).',
      labelNames: ['collection', 'view'],
      registers,
    });
    this.renderDuration = new Histogram({
      name: 'feedhub_view_render_duration_seconds',
      help: 'Duration of view renders, in seconds.',
      labelNames: ['collection', 'view'],
      buckets: [0.01, 0.1, 0.5, 1, 5, 15, 60],
      registers,
    });
  }

  /** Records one render of a view, or its failure when `report` is undefined. */
  recordRender(collection: string, view: string, report: ViewBuildReport | undefined): void {
    const labels = { collection, view };
    this.renders.inc({ ...labels, outcome: report === undefined ? 'failed' : 'rendered' });
    if (report === undefined) return;
    this.viewEntries.set(labels, report.entries - report.dropped);
    this.viewCut.set(labels, report.cut);
    this.viewDropped.set(labels, report.dropped);
    this.renderDuration.observe(labels, report.durationMs / 1000);
  }

  /** Records one run report. */
  record(report: PollReport): void {
    const labels = { collection: report.collectionId, source: report.sourceId };
    this.polls.inc({ ...labels, outcome: report.outcome });
    this.duration.observe(labels, report.durationMs / 1000);
    if (report.outcome !== 'failed') this.lastSuccess.set(labels, Date.now() / 1000);
    if (report.outcome !== 'applied') return;

    for (const count of LAST_POLL_COUNTS) {
      this.lastCounts.set({ ...labels, count }, report[count] ?? 0);
    }
    for (const rule of GUARD_RULES) {
      this.refused.inc({ ...labels, rule }, report.refused?.[rule] ?? 0);
    }
    this.plausible.set(labels, report.plausible === false ? 0 : 1);
  }

  /** Returns a router serving `GET /metrics` in the Prometheus text format. */
  router(): Router {
    const router = new Router();
    router.get('/metrics', async (ctx) => {
      ctx.set('Cache-Control', 'no-store');
      ctx.type = this.registry.contentType;
      ctx.body = await this.registry.metrics();
    });
    return router;
  }
}
