// Writes the last chaos run's figures (test/chaos/figures.json) into the README's chaos block: the
// reliability figures the issue asks for, in a few lines. Method and the rest: docs/chaos.md.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { writeReadmeBlock } from '../../bench/readme.mjs';

const figures = JSON.parse(readFileSync(new URL('./figures.json', import.meta.url), 'utf8'));
const k = figures.killedWorkers;
if (!k) throw new Error('test/chaos/figures.json has no killedWorkers run');
const lines = [
  `flotilla chaos (pnpm test:chaos): ${k.tasks} tasks, ${k.replicas} worker replicas, a SIGKILL every 1.5-2 s`,
  `  kills ${k.kills}, restarts ${k.restarts}, lost ${k.lost}, duplicated ${k.duplicated}, stuck ${k.stuck}, redelivered runs ${k.redelivered}`,
  `  kill to running elsewhere: p50 ${k.resumeP50S} s, p95 ${k.resumeP95S} s (goal p95 <= 15 s)`,
];
const r = figures.redisRestart;
if (r) {
  lines.push(
    `  Redis SIGKILLed mid-run: lost ${r.lostAlways} accepted tasks (appendfsync always), max reconnect ${r.maxReconnectS} s (goal <= 5 s)`,
  );
}
lines.push(`  machine: ${os.cpus().length} cores, Node ${process.versions.node}, ${k.at.slice(0, 10)}`);
writeReadmeBlock('chaos', lines);
