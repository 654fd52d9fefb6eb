/**
 * Entry module of `src/wasi/`: other folders reach its internal (`_`) files only
 * through it.
 *
 * WASI preview 1 for plugins that ask for it: the function table a module
 * may import and the per-instance state those functions share.
 *
 * @module
 */

export { PREVIEW1_FUNCTIONS, wasiType } from "./_abi.ts";
export { wasiStates } from "./_state.ts";
export { absolutePaths } from "./_write_grant.ts";
export { DEFAULT_MAX_OPEN_FILES, MAX_OPEN_FILES } from "./_open_files.ts";
export {
  adoptFileBudget,
  fileBudgetBuffer,
  FileCount,
  guestFiles,
  MAX_GUEST_FILES,
  newFileCell,
  returnFiles,
} from "./_file_budget.ts";
