/**
 * What a fresh `ArrayBuffer` costs, with V8's concurrent array-buffer
 * sweeping on (Deno's default) and off:
 * `deno run --allow-run --allow-read bench/fresh_buffers.ts [rounds]`.
 *
 * Each setting runs in a child process of its own (a V8 flag is set for a
 * whole process), and the children alternate round by round. Each child
 * times 16-byte buffers made in a tight loop, and made between 300
 * multiplications of other work (beside that work alone), and prints the
 * median ns per buffer over its rounds.
 *
 * @module
 */

import { medianOf } from "./_measure.ts";

const SETTINGS = {
  "default": [],
  "--no-concurrent-array-buffer-sweeping": ["--v8-flags=--no-concurrent-array-buffer-sweeping"],
} as const;
const LOOPS = 300_000;

/** Times one child's loops and prints `tight` and `between` ns per buffer as JSON. */
function measure(): void {
  let sink = 0;
  const work = (): number => {
    let x = 0;
    for (let j = 0; j < 300; j++) x += j * j;
    return x;
  };
  const time = (body: () => number): number => {
    const start = performance.now();
    for (let i = 0; i < LOOPS; i++) sink += body();
    return (performance.now() - start) / LOOPS * 1e6;
  };
  for (let warm = 0; warm < 2; warm++) time(() => new Uint8Array(16).length);
  const tight = time(() => new Uint8Array(16).length);
  const between = time(() => work() + new Uint8Array(16).length) - time(work);
  console.log(JSON.stringify({ tight, between, sink: sink > 0 }));
}

async function child(flags: readonly string[]): Promise<{ tight: number; between: number }> {
  const { stdout, success } = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...flags, import.meta.filename!, "--child"],
    stderr: "inherit",
  }).output();
  if (!success) throw new Error("A measuring child failed");
  return JSON.parse(new TextDecoder().decode(stdout));
}

if (Deno.args[0] === "--child") {
  measure();
} else {
  const rounds = Number(Deno.args[0] ?? 5);
  const results = new Map<string, { tight: number[]; between: number[] }>();
  for (let round = 0; round < rounds; round++) {
    for (const [name, flags] of Object.entries(SETTINGS)) {
      const { tight, between } = await child(flags);
      const entry = results.get(name) ?? { tight: [], between: [] };
      entry.tight.push(tight);
      entry.between.push(between);
      results.set(name, entry);
    }
  }
  console.log(`Medians of ${rounds} rounds, ns per 16-byte buffer:\n`);
  console.log("| setting | tight loop | between other work |");
  console.log("|---|---:|---:|");
  for (const [name, { tight, between }] of results) {
    console.log(`| ${name} | ${medianOf(tight).toFixed(0)} | ${medianOf(between).toFixed(0)} |`);
  }
}
