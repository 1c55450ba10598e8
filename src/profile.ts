// Which profile fields the app supplied that orq holds differently: the body of a profile-sync PATCH.
import { profileFields, type OrqIdentity, type OrqUser, type ProfileField } from './types.js';

export type ProfileChanges = Pick<OrqUser, ProfileField>;

/** undefined when nothing the app supplied differs; fields the app left out never count as changes. */
export function profileChanges(identity: OrqIdentity, user: OrqUser): ProfileChanges | undefined {
  let changes: ProfileChanges | undefined;
  for (const field of profileFields) {
    const wanted = user[field];
    if (wanted === undefined || sameJson(wanted, identity[field])) continue;
    changes ??= {};
    (changes as Record<ProfileField, unknown>)[field] = wanted;
  }
  return changes;
}

/** Deep equality of JSON-like values, ignoring key order (orq may hand metadata back in another order). */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((item, index) => sameJson(item, b[index]));
  }
  const aKeys = Object.keys(a).filter((key) => (a as Record<string, unknown>)[key] !== undefined);
  const bKeys = Object.keys(b).filter((key) => (b as Record<string, unknown>)[key] !== undefined);
  return (
    aKeys.length === bKeys.length &&
    aKeys.every((key) => sameJson((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key]))
  );
}
