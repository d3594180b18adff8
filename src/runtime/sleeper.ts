/** A sleep that any wake() ends early: the worker idles until a due time or new work. */
export class Sleeper {
  private pending: (() => void) | undefined;
  private woken = false;

  sleep(ms: number): Promise<void> {
    if (this.woken) {
      this.woken = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(done, Math.max(0, ms));
      const self = this;
      function done() {
        clearTimeout(timer);
        if (self.pending === done) self.pending = undefined;
        resolve();
      }
      this.pending = done;
    });
  }

  /** Ends the current sleep, or makes the next one return at once (a wake never gets lost between two checks). */
  wake(): void {
    if (this.pending) this.pending();
    else this.woken = true;
  }
}
