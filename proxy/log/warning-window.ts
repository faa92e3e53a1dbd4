/**
 * One warning per window, with exact counts: the first event is logged at once, and every
 * event after it within the window is counted and logged when the window ends, so a burst
 * of 903 refusals reads "refused 1" and then "refused 902" a window later, never a partial
 * count that waits for the next refusal to appear. A flood stays one line per window.
 */
export class WarningWindow {
  private pending = 0;
  private lastFields: Record<string, unknown> = {};
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly windowMs: number,
    private readonly emit: (count: number, fields: Record<string, unknown>) => void,
  ) {}

  /** One event; `fields` describe it (the latest ones go into the window's line). */
  add(fields: Record<string, unknown>): void {
    this.lastFields = fields;
    if (this.timer !== null) {
      this.pending++;
      return;
    }
    this.emit(1, fields);
    this.open();
  }

  private open(): void {
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.pending === 0) return;
      const count = this.pending;
      this.pending = 0;
      this.emit(count, this.lastFields);
      this.open();
    }, this.windowMs);
    // Never what keeps a process alive; flush() writes what is left at the end.
    this.timer.unref();
  }

  /** Logs what the open window has counted so far (drain, exit). */
  flush(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    if (this.pending === 0) return;
    const count = this.pending;
    this.pending = 0;
    this.emit(count, this.lastFields);
  }
}
