/// <reference lib="deno.worker" />
/** The baseline of the worker benchmarks: a bare worker that instantiates a module and answers postMessage calls. */
let add: ((a: number, b: number) => number) | undefined;
self.onmessage = async (event: MessageEvent) => {
  if (event.data instanceof WebAssembly.Module) {
    const instance = await WebAssembly.instantiate(event.data, {});
    add = instance.exports.add as (a: number, b: number) => number;
    self.postMessage("ready");
    return;
  }
  self.postMessage(add!(event.data as number, 1));
};
