import { release } from 'node:os';
import { describe, expect, it } from 'vitest';
import { detectPlatform, underGvisor } from './platform.js';

describe('the gvisor mode', () => {
  it('recognises gVisor by the kernel release it reports, and this host as not gVisor', () => {
    expect(underGvisor('4.19.0-gvisor')).toBe(true);
    expect(underGvisor('6.1.0-28-amd64')).toBe(false);
    expect(underGvisor(release())).toBe(false);
  });

  it('refuses to start on a host kernel, where a run without a network namespace would share the host’s', () => {
    expect(() => detectPlatform({ mode: 'gvisor', uidBase: 2_000_000 })).toThrow(/for gVisor only/);
  });
});
