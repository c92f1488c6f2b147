/** Groups withdrawn sightings into inactive values; shared by both adapters. */
import type { InactiveIndicator, WithdrawalReason } from './port.js';

/** A withdrawn sighting of a value that has no active one. */
export interface WithdrawnSightingRow {
  valueType: string;
  value: string;
  sourceId: string;
  indicatorId: string;
  firstSeen: number;
  lastSeen: number;
  withdrawnAt: number;
  reason: WithdrawalReason;
}

/** Merges rows ordered by type then value into one inactive value each. */
export function groupInactive(rows: Iterable<WithdrawnSightingRow>): InactiveIndicator[] {
  const out: InactiveIndicator[] = [];
  let current: InactiveIndicator | undefined;
  for (const row of rows) {
    if (current?.valueType !== row.valueType || current.value !== row.value) {
      current = {
        valueType: row.valueType,
        value: row.value,
        indicatorId: row.indicatorId,
        firstSeen: row.firstSeen,
        lastSeen: row.lastSeen,
        withdrawnAt: row.withdrawnAt,
        reason: row.reason,
        sources: [row.sourceId],
      };
      out.push(current);
      continue;
    }
    if (row.indicatorId < current.indicatorId) current.indicatorId = row.indicatorId;
    current.firstSeen = Math.min(current.firstSeen, row.firstSeen);
    current.lastSeen = Math.max(current.lastSeen, row.lastSeen);
    if (row.withdrawnAt > current.withdrawnAt) {
      current.withdrawnAt = row.withdrawnAt;
      current.reason = row.reason;
      current.sources = [row.sourceId];
    } else if (row.withdrawnAt === current.withdrawnAt) {
      current.sources.push(row.sourceId);
      current.sources.sort();
    }
  }
  return out;
}
