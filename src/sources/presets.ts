/**
 * Presets of the `json` source kind for published cloud and service ranges.
 * A preset only fills in the JMESPath expression; the URL is set in the
 * collection file or by a catalogue entry that the file names.
 */

export const JSON_PRESETS = [
  'aws-ip-ranges',
  'google-cloud',
  'google-goog',
  'cloudflare',
  'github-meta',
  'azure-service-tags',
  'microsoft-365',
] as const;

export type JsonPreset = (typeof JSON_PRESETS)[number];

/** Filters and key choices that some presets take. */
export interface JsonPresetOptions {
  /** aws-ip-ranges and google-cloud: keep prefixes of these services only. */
  service?: readonly string[];
  /** aws-ip-ranges: keep prefixes of these regions only. */
  region?: readonly string[];
  /** google-cloud: keep prefixes of these scopes (regions) only. */
  scope?: readonly string[];
  /** github-meta: the keys of the meta document whose ranges are read. */
  keys?: readonly string[];
  /** azure-service-tags: keep the prefixes of these service tags only (`values[].name`, e.g. AzureCloud.westeurope). */
  tag?: readonly string[];
  /** azure-service-tags: keep the prefixes of tags of these services only (`properties.systemService`). */
  systemService?: readonly string[];
  /** microsoft-365: keep the endpoint sets of these service areas only (Exchange, SharePoint, Skype, Common). */
  serviceArea?: readonly string[];
  /** microsoft-365: keep the endpoint sets of these categories only (Optimize, Allow, Default). */
  category?: readonly string[];
  /** microsoft-365: keep only the endpoint sets whose `required` flag has this value. */
  required?: boolean;
  /** microsoft-365: read the `ips` or the `urls` of the endpoint sets; one source reads one of them. */
  output?: 'ips' | 'urls';
}

/** The options each preset accepts. */
export const PRESET_OPTIONS: Readonly<Record<JsonPreset, readonly (keyof JsonPresetOptions)[]>> = {
  'aws-ip-ranges': ['service', 'region'],
  'google-cloud': ['service', 'scope'],
  'google-goog': [],
  cloudflare: [],
  'github-meta': ['keys'],
  'azure-service-tags': ['tag', 'systemService', 'region'],
  'microsoft-365': ['serviceArea', 'category', 'required', 'output'],
};

/**
 * Keys of GitHub's meta document (`GET /meta`) that hold IP ranges; other
 * keys hold SSH keys, domains or flags. A key the document lacks yields nothing.
 * NOTE: GitHub adds keys over time; list new ones with the `keys` option.
 */
export const GITHUB_META_IP_KEYS: readonly string[] = [
  'hooks',
  'web',
  'api',
  'git',
  'github_enterprise_importer',
  'packages',
  'pages',
  'importer',
  'actions',
  'actions_macos',
  'codespaces',
  'dependabot',
  'copilot',
];

/**
 * Builds the JMESPath expression of a preset. Option values are written as
 * JSON literals and keys as quoted identifiers, so any text is matched
 * literally and cannot change the expression.
 */
export function presetExpression(preset: JsonPreset, options: JsonPresetOptions = {}): string {
  switch (preset) {
    case 'aws-ip-ranges': {
      // ip-ranges.json lists IPv4 prefixes under `prefixes` and IPv6 ones under `ipv6_prefixes`.
      const filter = conditions({ service: options.service, region: options.region });
      return `[prefixes[${filter}].ip_prefix, ipv6_prefixes[${filter}].ipv6_prefix][]`;
    }
    case 'google-cloud': {
      // cloud.json has one `prefixes` list whose entries carry `ipv4Prefix` or `ipv6Prefix`.
      const filter = conditions({ service: options.service, scope: options.scope });
      return `[prefixes[${filter}].ipv4Prefix, prefixes[${filter}].ipv6Prefix][]`;
    }
    case 'google-goog':
      return '[prefixes[].ipv4Prefix, prefixes[].ipv6Prefix][]';
    case 'cloudflare':
      // The response of https://api.cloudflare.com/client/v4/ips wraps the lists in `result`.
      return '[result.ipv4_cidrs[], result.ipv6_cidrs[]][]';
    case 'github-meta': {
      const keys = options.keys ?? GITHUB_META_IP_KEYS;
      return `[${keys.map((key) => JSON.stringify(key)).join(', ')}][]`;
    }
    case 'azure-service-tags': {
      // ServiceTags_Public_*.json: `values` lists tags, each with `properties.addressPrefixes`.
      const filter = conditions({
        name: options.tag,
        'properties.systemService': options.systemService,
        'properties.region': options.region,
      });
      return `values[${filter}].properties.addressPrefixes[]`;
    }
    case 'microsoft-365':
      return microsoft365Expression(options);
  }
}

/**
 * The expression of the microsoft-365 preset. The endpoints web service
 * returns a list of endpoint sets with `ips` (CIDRs) and `urls` (host names,
 * some with wildcards). A leading `*.` is dropped, since a domain value also
 * covers its subdomains. A name with any other wildcard
 * (`autodiscover.*.onmicrosoft.com`) cannot be expressed as a domain, so it
 * is left out.
 */
function microsoft365Expression(options: JsonPresetOptions): string {
  const parts = [
    conditions({ serviceArea: options.serviceArea, category: options.category }).replace(/^\?/, ''),
    options.required === undefined ? '' : `required == ${jsonLiteral(options.required)}`,
  ].filter((part) => part !== '');
  const filter = parts.length === 0 ? '' : `?${parts.join(' && ')}`;
  if (options.output === 'urls') {
    return `[${filter}].urls[] | [?!contains(@, '*') || starts_with(@, '*.')] | map(&replace(@, '*.', '', \`1\`), @) | [?!contains(@, '*')]`;
  }
  return `[${filter}].ips[]`;
}

/** Returns a JMESPath filter (`?a && b`) that keeps entries whose fields are in the lists, or an empty string. */
function conditions(fields: Record<string, readonly string[] | undefined>): string {
  const parts = Object.entries(fields)
    .filter((entry): entry is [string, readonly string[]] => entry[1] !== undefined)
    .map(([field, values]) => `contains(${jsonLiteral(values)}, ${field})`);
  return parts.length === 0 ? '' : `?${parts.join(' && ')}`;
}

/**
 * Writes a JMESPath JSON literal. A backtick can occur only inside a JSON
 * string there, so it is written as the JSON escape \u0060, which the
 * JMESPath Community lexer reads back (it rejects the grammar's \` escape
 * inside a string).
 */
function jsonLiteral(value: unknown): string {
  return `\`${JSON.stringify(value).replace(/`/g, '\\u0060')}\``;
}
