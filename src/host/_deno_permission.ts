/**
 * Deno permission checks that never prompt. A permission Deno was not given
 * is in the state `"prompt"`, and on a terminal Deno then asks the operator
 * when code uses it — in a plugin's worker too, which inherits the process's
 * prompting (Deno 2.9 offers no way to create a worker whose permissions are
 * `"denied"`). Host-function code queries first and refuses what is not
 * granted, so no plugin can make Deno ask anyone anything.
 *
 * @module
 */

/**
 * True when Deno grants `descriptor` now, without asking anyone. A
 * descriptor Deno cannot query counts as not granted.
 */
export function denoGrants(descriptor: Deno.PermissionDescriptor): boolean {
  try {
    return Deno.permissions.querySync(descriptor).state === "granted";
  } catch {
    return false;
  }
}

/**
 * Refuses, with the `Deno.errors.NotCapable` that Deno itself would throw
 * after a denied prompt, what Deno does not grant `descriptor` for.
 *
 * @param what What the host function was about to do, for the message.
 */
export function assertDenoPermission(descriptor: Deno.PermissionDescriptor, what: string): void {
  if (denoGrants(descriptor)) return;
  throw new Deno.errors.NotCapable(`${what}: Deno does not grant ${describe(descriptor)}`);
}

function describe(descriptor: Deno.PermissionDescriptor): string {
  const detail = Object.entries(descriptor)
    .filter(([key]) => key !== "name")
    .map(([, value]) => String(value));
  return detail.length === 0 ? descriptor.name : `${descriptor.name} (${detail.join(", ")})`;
}
