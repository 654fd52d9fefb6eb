/**
 * The postMessage baseline's caller side: calls a bare worker
 * (`_bare_worker.ts`) with several calls outstanding at once.
 *
 * @module
 */

/** Calls a bare worker over postMessage; several calls may be outstanding (it answers in order). */
export function bareCaller(worker: Worker): (value: number) => Promise<number> {
  const waiting: ((value: number) => void)[] = [];
  let head = 0;
  worker.onmessage = (event) => {
    const resolve = waiting[head++]!;
    if (head === waiting.length) {
      waiting.length = 0;
      head = 0;
    }
    resolve(event.data as number);
  };
  return (value) =>
    new Promise((resolve) => {
      waiting.push(resolve);
      worker.postMessage(value);
    });
}
