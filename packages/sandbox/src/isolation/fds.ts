import { closeSync, readdirSync, readFileSync } from 'node:fs';

const O_CLOEXEC = 0o2000000;

/**
 * Closes every descriptor above stderr that this process inherited without close-on-exec: such a
 * descriptor would pass through every spawn into every run (neither libuv nor bubblewrap closes
 * it), handing hostile code a pipe or socket of whoever started the service. Node opens its own
 * with close-on-exec, so only inherited ones are touched. Call once, first thing at start-up.
 * Returns the descriptors closed.
 */
export function closeInheritedFds(): number[] {
  const closed: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc/self/fd');
  } catch {
    return closed; // no /proc: nothing to learn, and bubblewrap would not run either
  }
  for (const entry of entries) {
    const fd = Number(entry);
    if (!Number.isInteger(fd) || fd <= 2) continue;
    try {
      const flags = /^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1];
      if (flags !== undefined && (Number.parseInt(flags, 8) & O_CLOEXEC) === 0) {
        closeSync(fd);
        closed.push(fd);
      }
    } catch {
      // gone meanwhile (the directory's own descriptor)
    }
  }
  return closed;
}
