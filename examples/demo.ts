/**
 * The demo behind `deno task demo`: the guide's math plugin, then the
 * manager tour.
 *
 * @module
 */

import { main as mathPlugin } from "./math_plugin.ts";
import { main as managerTour } from "./manager_tour.ts";

console.log("== Math plugin ==");
await mathPlugin();
console.log("\n== Plugin manager ==");
await managerTour();
