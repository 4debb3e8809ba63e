/**
 * The progress lines of `meterhub meters import` on stderr: while uploading, the bytes and rows
 * sent (the hub checks them as they come); then, as the hub reports it, the rows imported of
 * all the rows, each phase with its own rate. Redrawn at most every 200 ms, each phase's last
 * state kept on its own line.
 */
export class ImportProgress {
  private readonly started = Date.now();
  private bytes = 0;
  private lines = 0;
  private applyStarted = 0;
  private lastDraw = 0;
  private lastLength = 0;

  constructor(private readonly totalBytes: number, private readonly write: ((text: string) => void) | null) {}

  /** A chunk of the file went out. */
  sent(chunk: Buffer): void {
    this.bytes += chunk.length;
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) this.lines++;
    this.draw(false, () => this.uploadLine());
  }

  /** The whole file went out. */
  uploaded(): void {
    this.draw(true, () => this.uploadLine());
  }

  /** The hub checked every row and reports `imported` of `rows` applied. */
  applied(imported: number, rows: number, final = false): void {
    if (this.applyStarted === 0) {
      this.applyStarted = Date.now();
      this.write?.('\n');
      this.lastLength = 0;
    }
    this.draw(final, () => {
      const rate = imported / Math.max(0.001, (Date.now() - this.applyStarted) / 1000);
      return `importing ${bar(rows === 0 ? 1 : imported / rows)}  ${count(imported)} of ${count(rows)} rows  ${count(rate)} rows/s`;
    });
  }

  /** Ends the last line. */
  done(): void {
    this.write?.('\n');
  }

  private uploadLine(): string {
    const seconds = Math.max(0.001, (Date.now() - this.started) / 1000);
    const rows = Math.max(0, this.lines - 1);
    const mib = this.bytes / 1048576;
    return `checking  ${bar(this.totalBytes === 0 ? 1 : this.bytes / this.totalBytes)}  ${count(rows)} rows  ${mib.toFixed(1)} MiB  ${(mib / seconds).toFixed(1)} MiB/s  ${count(rows / seconds)} rows/s`;
  }

  private draw(force: boolean, text: () => string): void {
    if (!this.write || (!force && Date.now() - this.lastDraw < 200)) return;
    this.lastDraw = Date.now();
    const line = text();
    this.write(`\r${line.padEnd(this.lastLength)}`);
    this.lastLength = line.length;
  }
}

function bar(share: number): string {
  const width = 30;
  const s = Math.min(1, Math.max(0, share));
  return `[${'#'.repeat(Math.round(s * width)).padEnd(width, '.')}] ${(s * 100).toFixed(0).padStart(3)}%`;
}

function count(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}
