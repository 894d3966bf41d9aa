/**
 * Receipts: what each worker told the customer after saving a payment. Each worker appends to its
 * own file (one JSON line per receipt), so receipts can never be lost to a race of their own: they
 * are the independent record the checks compare the account with.
 */
import { appendFile, mkdir, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Receipt } from './model.js';

/** Append-only receipt files, one per worker, in a directory. */
export class ReceiptBook {
  readonly #dir: string;

  /** Receipts kept in `dir`. */
  constructor(dir: string) {
    this.#dir = dir;
  }

  /** Record that the customer was told about `receipt`. */
  async issue(receipt: Receipt): Promise<void> {
    await mkdir(this.#dir, { recursive: true });
    await appendFile(
      join(this.#dir, `worker-${receipt.workerId}.jsonl`),
      `${JSON.stringify(receipt)}\n`,
    );
  }

  /** Every receipt issued, by every worker. */
  async readAll(): Promise<Receipt[]> {
    let files: string[];
    try {
      files = (await readdir(this.#dir)).filter((name) => name.endsWith('.jsonl')).sort();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    const receipts: Receipt[] = [];
    for (const file of files) {
      const text = await readFile(join(this.#dir, file), 'utf8');
      for (const line of text.split('\n')) if (line) receipts.push(JSON.parse(line) as Receipt);
    }
    return receipts;
  }
}
