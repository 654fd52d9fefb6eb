/** Reads one of the example WAT modules in `examples/wat/`. */
export function readExampleWat(name: string): Promise<string> {
  return Deno.readTextFile(new URL(`./wat/${name}.wat`, import.meta.url));
}

/** Where examples print; tests pass a collector instead of `console.log`. */
export type Print = (line: string) => void;
