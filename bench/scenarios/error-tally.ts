/**
 * Failures of a contender's calls (a command timeout on an overloaded machine, say) are counted
 * and reported instead of ending the whole run; only a contender that keeps failing stops it.
 */
export class ErrorTally {
  count = 0;
  first: string | undefined;

  constructor(
    readonly contender: string,
    readonly limit = 1_000,
  ) {}

  /** Count `error`; throws once more than `limit` calls failed. */
  record(error: unknown): void {
    this.count++;
    this.first ??= error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    if (this.count > this.limit) {
      throw new Error(
        `${this.contender}: more than ${this.limit} failed calls; first: ${this.first}`,
        {
          cause: error,
        },
      );
    }
  }
}
