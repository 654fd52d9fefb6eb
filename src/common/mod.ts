/**
 * Entry module of `src/common/`: other folders reach its internal (`_`) files only
 * through it.
 *
 * Small helpers every folder shares: describing a value in an error
 * message, checking an options object for unknown keys, the FIFO turn
 * calls wait for, copying a few bytes without a view, and the longest
 * delay a timer takes.
 *
 * @module
 */

export { CallQueue, isEmptyTurn } from "./_call_queue.ts";
export type { CallQueueOptions, LeaveOptions } from "./_call_queue.ts";
export { copyBytes } from "./_copy_bytes.ts";
export { lenientUtf8, strictUtf8 } from "./_guest_text.ts";
export {
  cutText,
  describeValue,
  isHiddenCode,
  shownName,
  thrownText,
  visibleText,
  withoutBom,
} from "./_format.ts";
export { assertKnownKeys, optionField, optionFields, readOptions } from "./_known_keys.ts";
export { MAX_TIMER_MS } from "./_timers.ts";
