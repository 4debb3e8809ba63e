import type pg from 'pg';

/**
 * Message sequences: unique across hub processes, and increasing in commit order (spec
 * invariant 8), which a PostgreSQL SEQUENCE is not: `nextval` hands out numbers at once and
 * never waits, so a transaction holding 41 may commit after one holding 42, and a reader (an
 * archive cursor, an ordered claim looking for a meter's earlier delivery) would see 42 without
 * 41 and move past it.
 *
 * So the counter is one row, `hub_sequence`, locked (SELECT ... FOR UPDATE) at the start of
 * every group commit that ingests, numbered from in memory while the group runs, written back
 * once before COMMIT, and unlocked by the COMMIT itself. A second ingest transaction, in this
 * process or another, waits on the row until the first has committed (or rolled back), and
 * PostgreSQL makes a transaction visible before it releases its locks; so numbers are handed
 * out in commit order, and whoever sees sequence n sees every sequence below it that committed.
 * It also means the duplicate check of (source, id) runs after every earlier ingest committed,
 * so two processes accepting the same event race to a `duplicate`, not to a key violation.
 *
 * The trade-off: ingest commits are serialised across the whole cluster, one group at a time
 * (the row lock is held from the group's first statement to its COMMIT and its WAL flush).
 * Group commit is what makes that affordable: every commitMessages call of a process issued
 * while the previous group commits shares one transaction, one lock hold and one flush, so
 * throughput scales with the group size rather than with the number of transactions; but
 * processes do not add ingest capacity beyond what one serial committer gets. Numbers of a
 * call that fails alone (its savepoint rolled back) are skipped: sequences are unique and
 * increasing, not gap-free. Other writes (claims, acks, results) never touch the row.
 */
export class SequenceBlock {
  private next: number;
  private constructor(private readonly last: number) {
    this.next = last + 1;
  }

  /** Locks the counter until the transaction ends; the first statement of an ingesting group. */
  static async lock(client: pg.ClientBase): Promise<SequenceBlock> {
    const { rows } = await client.query<{ last: number }>('SELECT last FROM hub_sequence FOR UPDATE');
    if (rows.length !== 1) throw new Error('hub_sequence has no row: the schema is damaged');
    return new SequenceBlock(rows[0]!.last);
  }

  /** n consecutive sequences; returns the first. */
  take(n: number): number {
    const first = this.next;
    this.next += n;
    return first;
  }

  get changed(): boolean {
    return this.next !== this.last + 1;
  }

  /** Writes the counter back (before COMMIT, at the top level of the transaction). */
  async store(client: pg.ClientBase): Promise<void> {
    await client.query('UPDATE hub_sequence SET last = $1', [this.next - 1]);
  }
}
