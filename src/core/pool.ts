export type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

/** Runs `work` over items with at most `limit` at once; results keep the input order. */
export async function runPool<I, T>(items: readonly I[], limit: number, work: (item: I, index: number) => Promise<T>): Promise<Outcome<T>[]> {
  const outcomes: Outcome<T>[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      try {
        outcomes[index] = { ok: true, value: await work(items[index]!, index) };
      } catch (error) {
        outcomes[index] = { ok: false, error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return outcomes;
}
