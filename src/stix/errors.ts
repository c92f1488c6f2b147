/** Invalid STIX input: a bad timestamp, object or pattern. The message names the value and the rule. */
export class StixError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StixError';
  }
}
