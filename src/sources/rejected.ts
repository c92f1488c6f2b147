/** A body that arrived but is unusable: an HTML page, no valid entry, mostly invalid lines. */
export class SourceRejectedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SourceRejectedError';
  }
}
