/**
 * Renders a readable page of the OpenAPI document: every operation with its
 * role, parameters, body and responses. The page is plain HTML without
 * scripts, so it loads nothing from another host.
 */
function escape(text: unknown): string {
  return String(text)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

function schemaName(schema: unknown): string {
  const ref = (schema as { $ref?: string } | undefined)?.$ref;
  if (ref)
    return `<a href="#schema-${escape(ref.split('/').pop())}">${escape(ref.split('/').pop())}</a>`;
  return escape(JSON.stringify(schema));
}

export function docsPage(openapi: Record<string, unknown>): string {
  const info = openapi.info as { title: string; version: string; description: string };
  const paths = openapi.paths as Record<string, Record<string, Record<string, unknown>>>;
  const schemas = (openapi.components as { schemas: Record<string, unknown> }).schemas;
  const parts: string[] = [];
  parts.push(
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escape(info.title)}</title>`,
  );
  parts.push(
    '<style>body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;line-height:1.45}' +
      'code,pre{background:#f4f4f4;padding:0 .2em}pre{padding:.6em;overflow:auto}.op{border-top:1px solid #ddd;padding:.6em 0}' +
      '.m{display:inline-block;min-width:4.5em;font-weight:bold}.role{color:#555;font-size:.9em}</style></head><body>',
  );
  parts.push(
    `<h1>${escape(info.title)} <small>${escape(info.version)}</small></h1><p>${escape(info.description)}</p>`,
  );
  parts.push('<p>Machine-readable: <a href="openapi.json">openapi.json</a> (OpenAPI 3.1).</p>');
  for (const [path, operations] of Object.entries(paths)) {
    for (const [method, op] of Object.entries(operations)) {
      parts.push(
        `<div class="op" id="${escape(op.operationId)}"><span class="m">${method.toUpperCase()}</span><code>${escape(path)}</code>`,
      );
      parts.push(
        ` <span class="role">role: ${escape(op['x-feedhub-role'])}</span><br><b>${escape(op.summary)}</b>`,
      );
      if (op.description) parts.push(`<p>${escape(op.description)}</p>`);
      const parameters =
        (op.parameters as
          { name: string; in: string; required: boolean; description: string }[] | undefined) ?? [];
      if (parameters.length > 0) {
        parts.push('<ul>');
        for (const p of parameters) {
          parts.push(
            `<li><code>${escape(p.name)}</code> (${escape(p.in)}${p.required ? ', required' : ''}): ${escape(p.description)}</li>`,
          );
        }
        parts.push('</ul>');
      }
      const body = op.requestBody as { content: Record<string, { schema: unknown }> } | undefined;
      if (body) {
        parts.push(
          `<p>Body: ${Object.entries(body.content)
            .map(([type, c]) => `<code>${escape(type)}</code> ${schemaName(c.schema)}`)
            .join(', ')}</p>`,
        );
      }
      const responses = op.responses as Record<
        string,
        { description: string; content?: Record<string, { schema: unknown }> }
      >;
      parts.push(
        `<p>Responses: ${Object.entries(responses)
          .map(
            ([status, r]) =>
              `<b>${escape(status)}</b> ${escape(r.description)}${
                r.content
                  ? ` ${Object.values(r.content)
                      .map((c) => schemaName(c.schema))
                      .join(', ')}`
                  : ''
              }`,
          )
          .join('; ')}</p></div>`,
      );
    }
  }
  parts.push('<h2>Schemas</h2>');
  for (const [name, schema] of Object.entries(schemas)) {
    parts.push(
      `<h3 id="schema-${escape(name)}">${escape(name)}</h3><pre>${escape(JSON.stringify(schema, null, 2))}</pre>`,
    );
  }
  parts.push('</body></html>');
  return parts.join('');
}
