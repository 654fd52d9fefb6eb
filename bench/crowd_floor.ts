/**
 * What the crowd goal (50 worker plugins × 4 callers) could reach with a
 * minimal shared-memory design, with and without pipelining:
 * `deno run --unstable-worker-options --allow-read --allow-run bench/crowd_floor.ts [rounds] [calls]`.
 *
 * Four variants, interleaved round by round, wall time and process CPU per
 * call (medians):
 * - `wasmplug`: 50 worker plugins' `callI32("add")`, 4 callers each;
 * - `one in flight`: 50 bare workers (`_ring_worker.ts`), each sent one
 *   request at a time (the next caller's request is posted as the answer is
 *   taken), as wasmplug's channel does;
 * - `pipelined`: the same workers sent up to 8 requests at once, which each
 *   answers in turn before it sleeps;
 * - `wasmplug's channel`: 50 workers on wasmplug's own channels (four each,
 *   `_lane_worker.ts`), driven by a minimal host that posts up to four
 *   requests ahead as a worker plugin's backend does, with none of the
 *   plugin's or the backend's other work: what the channel alone costs.
 *
 * Every side sleeps at once when it has nothing to do (no spinning: a crowd
 * has no core to spin on). The host sleeps on one bell that every worker
 * rings after answering.
 *
 * @module
 */

import { WasmRuntime } from "../mod.ts";
import { artifactOf } from "../src/compile/_artifact.ts";
import { ChannelWaits, createLaneBuffers, HostChannel } from "../src/worker/_channel.ts";
import { medianOf, processCpuUs } from "./_measure.ts";
import * as words from "./_ring.ts";

const ADD_WAT =
  '(module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))';
const WORKERS = 50;
const CALLERS = 4;
/**
 * Calls per variant and round. Short rounds mislead: with 10 000, wasmplug
 * read 27.5 µs a call against 12.0 µs with 100 000 (wasmplug's channel
 * 11.6 against 6.0 µs, the bare ring 3.3 against 3.2 µs): the start of a
 * round, before the spins and the calls posted ahead settle, weighs too much.
 */
const CALLS = Number(Deno.args[1] ?? 100_000);

/** One bare worker and the calls it was sent. */
interface RingWorker {
  readonly worker: Worker;
  readonly block: Int32Array;
  /** Requests in flight at most. */
  readonly depth: number;
  sent: number;
  taken: number;
  /** The resolvers of the requests in flight, first first. */
  readonly inFlight: ((value: number) => void)[];
  /** Requests waiting for room in the ring. */
  readonly waiting: { value: number; resolve: (value: number) => void }[];
}

const bell = new Int32Array(new SharedArrayBuffer(8));
const ringWorkers: RingWorker[] = [];
let watching = false;

async function spawnRingWorker(module: WebAssembly.Module, depth: number): Promise<RingWorker> {
  const block = new Int32Array(new SharedArrayBuffer(4 * (words.RING_ANSWERS + words.RING_SLOTS)));
  const worker = new Worker(new URL("./_ring_worker.ts", import.meta.url), { type: "module" });
  await new Promise((resolve) => {
    worker.onmessage = resolve;
    worker.postMessage(
      { block: block.buffer, bell: bell.buffer, module } satisfies words.RingSetup,
    );
  });
  const ring: RingWorker = { worker, block, depth, sent: 0, taken: 0, inFlight: [], waiting: [] };
  ringWorkers.push(ring);
  return ring;
}

function send(ring: RingWorker, value: number, resolve: (value: number) => void): void {
  ring.block[words.RING_REQUESTS + ring.sent % words.RING_SLOTS] = value;
  ring.inFlight.push(resolve);
  Atomics.store(ring.block, words.RING_SENT, ++ring.sent);
  if (Atomics.load(ring.block, words.RING_SLEEPS) !== 0) {
    Atomics.notify(ring.block, words.RING_SENT);
  }
}

function ringCall(ring: RingWorker, value: number): Promise<number> {
  return new Promise((resolve) => {
    if (ring.sent - ring.taken < ring.depth) send(ring, value, resolve);
    else ring.waiting.push({ value, resolve });
    if (!watching) void watch();
  });
}

/** Takes every answer there is, posting waiting requests as room frees; whether there was one. */
function takeAnswers(): boolean {
  let any = false;
  for (const ring of ringWorkers) {
    const done = Atomics.load(ring.block, words.RING_DONE);
    while (ring.taken !== done) {
      const value = ring.block[words.RING_ANSWERS + ring.taken % words.RING_SLOTS]!;
      ring.taken++;
      ring.inFlight.shift()!(value);
      const next = ring.waiting.shift();
      if (next !== undefined) send(ring, next.value, next.resolve);
      any = true;
    }
  }
  return any;
}

async function watch(): Promise<void> {
  watching = true;
  while (ringWorkers.some((ring) => ring.taken !== ring.sent)) {
    const rung = Atomics.load(bell, words.BELL_RUNG);
    if (takeAnswers()) {
      await Promise.resolve();
      continue;
    }
    Atomics.store(bell, words.BELL_SLEEPS, 1);
    const waited = Atomics.waitAsync(bell, words.BELL_RUNG, rung);
    if (waited.async) await waited.value;
    Atomics.store(bell, words.BELL_SLEEPS, 0);
  }
  watching = false;
}

/** One worker on wasmplug's channels (`_lane_worker.ts`), and its requests in flight. */
interface LaneWorker {
  readonly worker: Worker;
  readonly channels: HostChannel[];
  next: number;
  /** The channel and resolver of each request in flight, first first. */
  readonly inFlight: { channel: HostChannel; resolve: (value: number) => void }[];
  /** Requests waiting for a free channel. */
  readonly waiting: { value: number; resolve: (value: number) => void }[];
  pumping: boolean;
}

/** A plugin worker's channels, as `WorkerBackend` makes them. */
const LANES = 4;
const laneWorkers: LaneWorker[] = [];

async function spawnLaneWorker(): Promise<LaneWorker> {
  const buffers = createLaneBuffers(LANES);
  const waits = new ChannelWaits();
  const worker = new Worker(new URL("./_lane_worker.ts", import.meta.url), { type: "module" });
  await new Promise((resolve) => {
    worker.onmessage = resolve;
    worker.postMessage(buffers);
  });
  const channels = buffers.map((each) => new HostChannel(each, waits));
  const lanes: LaneWorker = {
    worker,
    channels,
    next: 0,
    inFlight: [],
    waiting: [],
    pumping: false,
  };
  laneWorkers.push(lanes);
  return lanes;
}

/** Posts a request to the next channel, ahead when another is in flight. */
function postLane(lanes: LaneWorker, value: number, resolve: (value: number) => void): void {
  const channel = lanes.channels[lanes.next]!;
  lanes.next = (lanes.next + 1) % LANES;
  channel.postRequest(1, [value, 1], 0, lanes.inFlight.length > 0);
  lanes.inFlight.push({ channel, resolve });
  if (!lanes.pumping) void pumpLanes(lanes);
}

/** Takes the answers in order, each on its request's channel. */
async function pumpLanes(lanes: LaneWorker): Promise<void> {
  lanes.pumping = true;
  while (lanes.inFlight.length > 0) {
    const first = lanes.inFlight[0]!;
    const answer = first.channel.poll() ?? await first.channel.receive();
    lanes.inFlight.shift();
    first.resolve(answer!.values[0] as number);
    const next = lanes.waiting.shift();
    if (next !== undefined) postLane(lanes, next.value, next.resolve);
  }
  lanes.pumping = false;
}

function laneCall(lanes: LaneWorker, value: number): Promise<number> {
  return new Promise((resolve) => {
    if (lanes.inFlight.length < LANES) postLane(lanes, value, resolve);
    else lanes.waiting.push({ value, resolve });
  });
}

/** `CALLS` calls spread over `callers`, all at once. */
async function crowd(callers: readonly ((value: number) => Promise<number>)[]): Promise<number> {
  let sum = 0;
  await Promise.all(callers.map(async (call) => {
    for (let i = 0; i < CALLS / callers.length; i++) sum += await call(i);
  }));
  return sum;
}

const rounds = Number(Deno.args[0] ?? 11);
await using runtime = new WasmRuntime({
  execution: { isolation: "worker" },
  resourceLimits: { maxInstances: WORKERS + 10 },
  idleTimeoutMs: Infinity,
});
const compiled = await runtime.compileWat("add", ADD_WAT);
const module = await WebAssembly.compile(artifactOf(compiled).bytes as Uint8Array<ArrayBuffer>);
const plugins = await Promise.all(
  Array.from({ length: WORKERS }, () => runtime.createPlugin(compiled)),
);
const callersOf = (call: (value: number) => Promise<number>) =>
  Array.from({ length: CALLERS }, () => call);
const variants: Record<string, ((value: number) => Promise<number>)[]> = {
  "wasmplug": plugins.flatMap((plugin) => callersOf((value) => plugin.callI32("add", [value, 1]))),
  "one in flight": [],
  "pipelined": [],
  "wasmplug's channel": [],
};
for (const [name, depth] of [["one in flight", 1], ["pipelined", words.RING_SLOTS]] as const) {
  for (let i = 0; i < WORKERS; i++) {
    const ring = await spawnRingWorker(module, depth);
    variants[name]!.push(...callersOf((value) => ringCall(ring, value)));
  }
}
for (let i = 0; i < WORKERS; i++) {
  const lanes = await spawnLaneWorker();
  variants["wasmplug's channel"]!.push(...callersOf((value) => laneCall(lanes, value)));
}

const wall: Record<string, number[]> = {};
const cpu: Record<string, number[]> = {};
let sink = 0;
const names = Object.keys(variants);
for (let round = -1; round < rounds; round++) {
  // Rotated, so that no variant always runs first.
  const order = names.map((_, i) => names[(i + Math.max(0, round)) % names.length]!);
  for (const name of order) {
    const cpuBefore = processCpuUs();
    const start = performance.now();
    sink += await crowd(variants[name]!);
    const wallUs = (performance.now() - start) * 1e3;
    if (round < 0) continue;
    (wall[name] ??= []).push(wallUs / CALLS);
    (cpu[name] ??= []).push((processCpuUs() - cpuBefore) / CALLS);
  }
}
for (const ring of ringWorkers) {
  Atomics.store(ring.block, words.RING_CLOSE, 1);
  Atomics.add(ring.block, words.RING_SENT, 1);
  Atomics.notify(ring.block, words.RING_SENT);
  ring.worker.terminate();
}
for (const lanes of laneWorkers) {
  for (const channel of lanes.channels) channel.close();
  lanes.worker.terminate();
}
await Promise.all(plugins.map((plugin) => plugin.stop()));

console.log(
  `${WORKERS} workers × ${CALLERS} callers, ${rounds} interleaved rounds, medians per call:\n`,
);
console.log("| variant | wall µs | process CPU µs |");
console.log("|---|---:|---:|");
for (const name of names) {
  console.log(
    `| ${name} | ${medianOf(wall[name]!).toFixed(2)} | ${medianOf(cpu[name]!).toFixed(2)} |`,
  );
}
if (sink === 0.5) console.log(sink);
