/** `Accept-Encoding` evaluation for gzip (RFC 9110, section 12.5.3). */

/**
 * Returns whether the client accepts a gzip-coded response. `gzip` and its
 * alias `x-gzip` name the coding, `*` covers it when not named, and `q=0`
 * rejects it. An absent header means any coding is acceptable, but the
 * identity coding is sent then, as most clients without the header cannot
 * decode gzip.
 */
export function acceptsGzip(header: string | undefined): boolean {
  if (header === undefined || header.trim() === '') {
    return false;
  }
  let named: number | undefined;
  let wildcard: number | undefined;
  for (const member of header.split(',')) {
    const [codingPart = '', ...params] = member.split(';');
    const coding = codingPart.trim().toLowerCase();
    let q = 1;
    for (const param of params) {
      const [name = '', value = ''] = param.split('=');
      if (name.trim().toLowerCase() === 'q') {
        const parsed = Number(value.trim());
        q = Number.isFinite(parsed) && parsed >= 0 && parsed <= 1 ? parsed : 0;
      }
    }
    if (coding === 'gzip' || coding === 'x-gzip') {
      named = Math.max(named ?? 0, q);
    } else if (coding === '*') {
      wildcard = q;
    }
  }
  const q = named ?? wildcard ?? 0;
  return q > 0;
}
