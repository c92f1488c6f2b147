/** TAXII status resources: building them from a stored add-objects outcome and presenting them. */
import type { StatusDetail, StatusRecord } from '../store/index.js';
import { taxiiTimestamp } from './routes/common.js';

/** Presents a status record as the TAXII 2.1 status resource; empty lists are left out. */
export function toStatusResource(status: StatusRecord): Record<string, unknown> {
  const resource: Record<string, unknown> = {
    id: status.id,
    status: status.status,
    request_timestamp: taxiiTimestamp(status.requestTimestamp),
    total_count: status.totalCount,
    success_count: status.successes.length,
  };
  if (status.successes.length > 0) resource['successes'] = status.successes.map(toDetail);
  resource['failure_count'] = status.failures.length;
  if (status.failures.length > 0) resource['failures'] = status.failures.map(toDetail);
  resource['pending_count'] = status.pendings.length;
  if (status.pendings.length > 0) resource['pendings'] = status.pendings.map(toDetail);
  return resource;
}

function toDetail(detail: StatusDetail): Record<string, string> {
  const resource: Record<string, string> = { id: detail.id, version: detail.version };
  if (detail.message !== undefined) resource['message'] = detail.message;
  return resource;
}
