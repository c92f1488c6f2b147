import { StixError } from './errors.js';

/** TLP levels; `white` is TLP 1.0 only, `clear` and `amber+strict` are TLP 2.0 only. */
export type TlpLevel = 'clear' | 'white' | 'green' | 'amber' | 'amber+strict' | 'red';
export type TlpVersion = '1.0' | '2.0';

export const TLP_LEVELS: readonly TlpLevel[] = [
  'clear',
  'white',
  'green',
  'amber',
  'amber+strict',
  'red',
];

/** A predefined marking-definition object: its id and its exact JSON text. */
export interface TlpMarking {
  id: string;
  level: TlpLevel;
  version: TlpVersion;
  json: string;
}

/** The TLP 2.0 property extension that OASIS defines in cti-stix-common-objects. */
export const TLP2_EXTENSION_ID = 'extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d';

/** TLP 1.0 marking definitions, fixed by STIX 2.1 section 7.2.1.4. */
const TLP1_IDS: Record<'white' | 'green' | 'amber' | 'red', string> = {
  white: 'marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9',
  green: 'marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da',
  amber: 'marking-definition--f88d31f6-486f-44da-b317-01333bde0b82',
  red: 'marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed',
};

/** TLP 2.0 marking definitions as published by OASIS in cti-stix-common-objects. */
const TLP2_IDS: Record<'clear' | 'green' | 'amber' | 'amber+strict' | 'red', string> = {
  clear: 'marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487',
  green: 'marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb',
  amber: 'marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421',
  'amber+strict': 'marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003',
  red: 'marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1',
};

/** Marking definition texts by TLP version and level, built once: polls attach one to every value. */
const markingJson = new Map<string, string>();

function memo(key: string, build: () => string): string {
  let json = markingJson.get(key);
  if (json === undefined) {
    json = build();
    markingJson.set(key, json);
  }
  return json;
}

function tlp1Json(level: keyof typeof TLP1_IDS): string {
  return memo(`1.0 ${level}`, () => buildTlp1Json(level));
}

function tlp2Json(level: keyof typeof TLP2_IDS): string {
  return memo(`2.0 ${level}`, () => buildTlp2Json(level));
}

function buildTlp1Json(level: keyof typeof TLP1_IDS): string {
  return JSON.stringify({
    type: 'marking-definition',
    spec_version: '2.1',
    id: TLP1_IDS[level],
    created: '2017-01-20T00:00:00.000Z',
    definition_type: 'tlp',
    name: `TLP:${level.toUpperCase()}`,
    definition: { tlp: level },
  });
}

function buildTlp2Json(level: keyof typeof TLP2_IDS): string {
  return JSON.stringify({
    type: 'marking-definition',
    spec_version: '2.1',
    id: TLP2_IDS[level],
    created: '2022-10-01T00:00:00.000Z',
    name: `TLP:${level.toUpperCase()}`,
    extensions: {
      [TLP2_EXTENSION_ID]: { extension_type: 'property-extension', tlp_2_0: level },
    },
  });
}

/**
 * Returns the predefined marking definition of a TLP level. `white` selects
 * TLP 1.0 and `clear` or `amber+strict` select TLP 2.0; for `green`, `amber`
 * and `red` the `version` decides, TLP 2.0 by default. With `version` 1.0,
 * `clear` maps to TLP:WHITE; with 2.0, `white` maps to TLP:CLEAR, as the TLP
 * 2.0 standard renames it.
 */
export function tlpMarking(level: TlpLevel, version?: TlpVersion): TlpMarking {
  const chosen: TlpVersion = version ?? (level === 'white' ? '1.0' : '2.0');
  if (chosen === '1.0') {
    if (level === 'amber+strict') {
      throw new StixError(
        'TLP:AMBER+STRICT exists only in TLP 2.0; use version 2.0 or level amber',
      );
    }
    const tlp1Level = level === 'clear' ? 'white' : level;
    return { id: TLP1_IDS[tlp1Level], level: tlp1Level, version: '1.0', json: tlp1Json(tlp1Level) };
  }
  const tlp2Level = level === 'white' ? 'clear' : level;
  return { id: TLP2_IDS[tlp2Level], level: tlp2Level, version: '2.0', json: tlp2Json(tlp2Level) };
}

/** Returns every predefined TLP marking definition, TLP 1.0 first. */
export function allTlpMarkings(): TlpMarking[] {
  const tlp1 = (['white', 'green', 'amber', 'red'] as const).map((level) =>
    tlpMarking(level, '1.0'),
  );
  const tlp2 = (['clear', 'green', 'amber', 'amber+strict', 'red'] as const).map((level) =>
    tlpMarking(level, '2.0'),
  );
  return [...tlp1, ...tlp2];
}

/** Returns the TLP marking with this id, or undefined when the id is no predefined TLP marking. */
export function tlpMarkingById(id: string): TlpMarking | undefined {
  return allTlpMarkings().find((marking) => marking.id === id);
}

export function isTlpLevel(text: string): text is TlpLevel {
  return (TLP_LEVELS as readonly string[]).includes(text);
}
