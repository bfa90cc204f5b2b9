// Writes the last chaos run's figures (test/chaos/figures.json) into the README's chaos block: the
// reliability figures the issue asks for, in a few lines. Method and the rest: docs/chaos.md.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { writeReadmeBlock } from '../../bench/readme.mjs';

const figures = JSON.parse(readFileSync(new URL('./figures.json', import.meta.url), 'utf8'));
const k = figures.killedWorkers;
if (!k) throw new Error('test/chaos/figures.json has no killedWorkers run');
const r = figures.redisRestart;
const c = figures.chromaDown;
const load = k.loadAvg15 === undefined ? '' : `, load ${k.loadAvg15}`;
const lines = [
  `chaos: ${k.tasks} tasks, ${k.kills} SIGKILLs+restarts of ${k.replicas} workers: completed ${k.completed}, lost ${k.lost}, duplicated ${k.duplicated}, stuck ${k.stuck}`,
  `  kill to running elsewhere p50 ${k.resumeP50S} s, p95 ${k.resumeP95S} s (goal <= 15 s)` +
    (r ? `; Redis killed: lost ${r.lostAlways}, reconnect <= ${r.maxReconnectS} s` : ''),
  ...(c
    ? [
        `  Chroma killed: ${c.partialDuringOutage} of ${c.tasksDuringOutage} tasks completed partial; whole again ${c.wholeAgainS} s after it returned, every answer kept after ${c.answersKeptS} s`,
      ]
    : []),
  `  ${os.cpus().length} cores${load}, Node ${process.versions.node}, ${k.at.slice(0, 10)}, ${k.elapsedS} s`,
];
writeReadmeBlock('chaos', lines);
