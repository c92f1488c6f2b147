import { describe, expect, it } from '@jest/globals';

import {
  JsonElementScanner,
  parseElementPath,
  type ElementPath,
} from '../../src/sources/json-elements.js';

interface Scanned {
  elements: (unknown | 'OVERLONG')[];
  problem: string | undefined;
}

/** Scans `text` cut into pieces of `pieceLength` characters. */
function scan(text: string, path: ElementPath, pieceLength = text.length, maxLength = 1 << 20) {
  const elements: unknown[] = [];
  const scanner = new JsonElementScanner(
    path,
    (element) => elements.push(element === undefined ? 'OVERLONG' : JSON.parse(element)),
    maxLength,
  );
  for (let at = 0; at < text.length; at += Math.max(1, pieceLength)) {
    scanner.push(text.slice(at, at + Math.max(1, pieceLength)));
  }
  const problem = scanner.end();
  return { elements, problem } satisfies Scanned;
}

/** Returns the elements that `JSON.parse` finds at the path. */
function expected(document: unknown, path: ElementPath): unknown[] {
  let value = document;
  for (const key of path) value = (value as Record<string, unknown>)[key];
  return Array.isArray(value) ? value : Object.values(value as object);
}

/** A small deterministic generator, so that a failure repeats. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648;
  };
}

function randomValue(next: () => number, depth: number): unknown {
  const pick = Math.floor(next() * (depth > 2 ? 4 : 6));
  const strings = ['a', 'x"y', 'back\\slash', '[{,:}]', 'ünï\u2028', '', ' spaced '];
  switch (pick) {
    case 0:
      return strings[Math.floor(next() * strings.length)];
    case 1:
      return Math.round(next() * 1e6) / 100 - 5000;
    case 2:
      return [true, false, null][Math.floor(next() * 3)];
    case 3:
      return `198.51.100.${Math.floor(next() * 255)}`;
    case 4:
      return Array.from({ length: Math.floor(next() * 4) }, () => randomValue(next, depth + 1));
    default:
      return Object.fromEntries(
        Array.from({ length: Math.floor(next() * 4) }, (_, i) => [
          strings[i % strings.length]! + i,
          randomValue(next, depth + 1),
        ]),
      );
  }
}

describe('parseElementPath', () => {
  it('top level and keys', () => {
    expect(parseElementPath('@')).toEqual([]);
    expect(parseElementPath('result.items')).toEqual(['result', 'items']);
  });

  it('empty key rejected', () => {
    expect(parseElementPath('result..items')).toContain('is not an element path');
  });
});

describe('JsonElementScanner', () => {
  it('array at a key', () => {
    const text =
      '{"syncToken":"1","prefixes":[{"ip_prefix":"3.5.140.0/22"},{"ip_prefix":"3.2.0.0/16"}]}';
    const scanned = scan(text, ['prefixes'], 7);
    expect(scanned.problem).toBeUndefined();
    expect(scanned.elements).toEqual([{ ip_prefix: '3.5.140.0/22' }, { ip_prefix: '3.2.0.0/16' }]);
  });

  it('object members at top', () => {
    const text = '{"1":[{"ioc_value":"evil.example"}],"2":[{"ioc_value":"bad.example"}]}';
    const scanned = scan(text, [], 3);
    expect(scanned.elements).toEqual([
      [{ ioc_value: 'evil.example' }],
      [{ ioc_value: 'bad.example' }],
    ]);
  });

  it('scalar elements and nesting', () => {
    const text = ' [ "a" , 12.5e3,true ,null, [1,[2]], {"k":"]"} ] ';
    const scanned = scan(text, [], 1);
    expect(scanned.problem).toBeUndefined();
    expect(scanned.elements).toEqual(['a', 12500, true, null, [1, [2]], { k: ']' }]);
  });

  it('keys off the path ignored', () => {
    const text = '{"a":{"items":[9]},"items":[1,2],"b":[{"items":[3]}]}';
    expect(scan(text, ['items'], 2).elements).toEqual([1, 2]);
    expect(scan(text, ['a', 'items'], 2).elements).toEqual([9]);
  });

  it('escaped key matches', () => {
    const text = '{"it\\u0065ms":["x"],"q\\"k":["y"]}';
    expect(scan(text, ['items'], 4).elements).toEqual(['x']);
    expect(scan(text, ['q"k'], 4).elements).toEqual(['y']);
  });

  it('empty containers', () => {
    expect(scan('{"items":[]}', ['items'])).toEqual({ elements: [], problem: undefined });
    expect(scan('{"items":{}}', ['items'])).toEqual({ elements: [], problem: undefined });
  });

  it('truncated document reported', () => {
    const text = '{"items":["a","b"';
    const scanned = scan(text, ['items'], 5);
    expect(scanned.elements).toEqual(['a', 'b']);
    expect(scanned.problem).toContain('truncated');
  });

  it('truncated inside a string', () => {
    expect(scan('{"items":["a", "b', ['items']).problem).toContain('truncated');
  });

  it('missing container reported', () => {
    expect(scan('{"other":[1]}', ['items']).problem).toContain('has no array or object at items');
  });

  it('scalar at the path reported', () => {
    expect(scan('{"items":"a"}', ['items']).problem).toContain('neither an array nor an object');
  });

  it('empty body reported', () => {
    expect(scan('  ', []).problem).toBe('the body is empty');
  });

  it('trailing text reported', () => {
    expect(scan('[1] <html>', []).problem).toBe(
      'the body is not valid JSON: expected the end of the body but found "<" at character 4',
    );
  });

  it('invalid JSON anywhere reported', () => {
    const bodies = [
      '{"a": x, "items": ["1"]}',
      '{"a": tru, "items": ["1"]}',
      '{"items" ["1", "2"]}',
      '{"items": ["1", "2"]]',
      '{"items": ["1", "2"}}',
      '{"items": ["1" "2"]}',
      '{"items": ["1",, "2"]}',
      '{"items": ["1", "2",]}',
      '{"items": ["1": "2"]}',
      '{"items": [{"ip": "1",}]}',
      '{"items": [01]}',
      '{"items": [1.]}',
      '{"items": ["a\\qb"]}',
      '{"items": ["a\u0001b"]}',
      '{"items": ["\\u12G4"]}',
      '{"me\\qta": 1, "items": []}',
      ']{"items": []}',
      '{"items":\u00a0[]}',
      '{"items": []}}',
    ];
    for (const body of bodies) {
      for (const pieceLength of [1, 3, body.length]) {
        expect(() => JSON.parse(body)).toThrow();
        expect([body, scan(body, ['items'], pieceLength).problem]).toEqual([
          body,
          expect.stringContaining('the body is not valid JSON: expected'),
        ]);
      }
    }
  });

  it('key that is no string reported', () => {
    expect(scan('{items:[1]}', ['items']).problem).toContain('not valid JSON');
  });

  it('overlong element skipped', () => {
    const long = 'x'.repeat(50);
    const scanned = scan(`["short","${long}",{"k":"${long}"},"end"]`, [], 8, 20);
    expect(scanned.elements).toEqual(['short', 'OVERLONG', 'OVERLONG', 'end']);
    expect(scanned.problem).toBeUndefined();
  });

  it('accepts only what JSON.parse accepts', () => {
    const next = random(4242);
    const noise = ['"', '\\', ',', ':', '[', ']', '{', '}', 'x', '1', ' ', 'e', '-', '.'];
    for (let round = 0; round < 1500; round++) {
      const document = {
        items: [randomValue(next, 1), randomValue(next, 1)],
        tail: randomValue(next, 1),
      };
      const text = JSON.stringify(document);
      const at = Math.floor(next() * text.length);
      const mutated =
        next() < 0.3
          ? text.slice(0, at) // cut short
          : text.slice(0, at) + noise[Math.floor(next() * noise.length)]! + text.slice(at + 1);
      let parsed: unknown;
      try {
        parsed = JSON.parse(mutated);
      } catch {
        parsed = undefined;
      }
      const scanned = scan(mutated, ['items'], 1 + Math.floor(next() * 9));
      if (parsed === undefined) {
        expect([mutated, scanned.problem]).toEqual([mutated, expect.any(String)]);
      } else if (scanned.problem === undefined) {
        expect(scanned.elements).toEqual(expected(parsed, ['items']));
      } else {
        expect([mutated, scanned.problem]).toEqual([
          mutated,
          expect.not.stringContaining('not valid JSON'),
        ]);
      }
    }
  });

  it('matches JSON.parse on random documents', () => {
    const next = random(20261205);
    for (let round = 0; round < 300; round++) {
      const inner = Array.from({ length: Math.floor(next() * 6) }, () => randomValue(next, 1));
      const container =
        next() < 0.5 ? inner : Object.fromEntries(inner.map((v, i) => [`k${i}`, v]));
      const document = {
        before: randomValue(next, 1),
        list: { items: container },
        after: [1, '}'],
      };
      const text = JSON.stringify(document, null, round % 3 === 0 ? 2 : undefined);
      const pieceLength = 1 + Math.floor(next() * 20);
      const scanned = scan(text, ['list', 'items'], pieceLength);
      expect(scanned.problem).toBeUndefined();
      expect(scanned.elements).toEqual(expected(document, ['list', 'items']));
    }
  });
});
