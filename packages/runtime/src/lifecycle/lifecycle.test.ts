import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createLifecycle, SHUTDOWN_PHASES, type ShutdownPhase } from './lifecycle.js';

const log = pino({ level: 'silent' });

describe('createLifecycle', () => {
  it('moves starting -> ready -> draining -> closed', async () => {
    const lifecycle = createLifecycle({ log });
    expect(lifecycle.state).toBe('starting');
    expect(lifecycle.started).toBe(false);
    lifecycle.markReady();
    expect(lifecycle.state).toBe('ready');
    let seenDuringShutdown: string | undefined;
    lifecycle.onShutdown(
      'observe',
      () => {
        seenDuringShutdown = lifecycle.state;
      },
      'not-ready',
    );
    await lifecycle.shutdown('test');
    expect(seenDuringShutdown).toBe('draining');
    expect(lifecycle.state).toBe('closed');
    expect(lifecycle.started).toBe(true);
  });

  it('runs phases in order whatever the registration order', async () => {
    const lifecycle = createLifecycle({ log });
    const ran: ShutdownPhase[] = [];
    for (const phase of [...SHUTDOWN_PHASES].reverse()) lifecycle.onShutdown(phase, () => void ran.push(phase), phase);
    await lifecycle.shutdown();
    expect(ran).toEqual(['not-ready', 'stop-intake', 'drain', 'close', 'flush']);
  });

  it('is idempotent: concurrent and later calls share one run', async () => {
    const lifecycle = createLifecycle({ log });
    let runs = 0;
    lifecycle.onShutdown('count', async () => {
      runs++;
    });
    const first = lifecycle.shutdown('a');
    const second = lifecycle.shutdown('b');
    expect(second).toBe(first);
    await first;
    const report = await lifecycle.shutdown('c');
    expect(runs).toBe(1);
    expect(report.reason).toBe('a');
  });

  it('keeps going after a step throws, and reports it', async () => {
    const lifecycle = createLifecycle({ log });
    const ran: string[] = [];
    lifecycle.onShutdown(
      'boom',
      () => {
        throw new Error('close failed');
      },
      'close',
    );
    lifecycle.onShutdown('sibling', () => void ran.push('sibling'), 'close');
    lifecycle.onShutdown('flush', () => void ran.push('flush'), 'flush');
    const report = await lifecycle.shutdown();
    expect(ran).toEqual(['sibling', 'flush']);
    expect(report).toMatchObject({ clean: false, failed: ['boom'], timedOut: [] });
  });

  it('stops waiting for a drain step at the grace deadline and runs the later phases', async () => {
    const lifecycle = createLifecycle({ log, graceMs: 50 });
    const ran: string[] = [];
    lifecycle.onShutdown('stuck worker', () => new Promise(() => {}), 'drain');
    lifecycle.onShutdown('quick worker', () => void ran.push('quick worker'), 'drain');
    lifecycle.onShutdown('redis', () => void ran.push('redis'), 'close');
    const report = await lifecycle.shutdown();
    expect(report).toMatchObject({ clean: false, failed: [], timedOut: ['stuck worker'] });
    expect(ran).toEqual(['quick worker', 'redis']);
  });

  it('bounds steps outside drain by stepTimeoutMs', async () => {
    const lifecycle = createLifecycle({ log, stepTimeoutMs: 20 });
    lifecycle.onShutdown('dead redis quit', () => new Promise(() => {}), 'close');
    expect((await lifecycle.shutdown()).timedOut).toEqual(['dead redis quit']);
  });

  it('reports a clean shutdown', async () => {
    const lifecycle = createLifecycle({ log });
    lifecycle.onShutdown('ok', async () => {}, 'drain');
    expect(await lifecycle.shutdown()).toEqual({ reason: 'shutdown', clean: true, failed: [], timedOut: [] });
  });

  it('rejects an unknown phase', () => {
    const lifecycle = createLifecycle({ log });
    expect(() => lifecycle.onShutdown('x', () => {}, 'later' as ShutdownPhase)).toThrow(/unknown shutdown phase/);
  });
});
