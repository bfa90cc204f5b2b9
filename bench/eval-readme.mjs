// Writes one eval run's totals into docs/eval.md's results block (with the goals that failed) and
// the README's (the success rate alone), one line per model (the run's label), so `pnpm eval 0.5b`
// and `pnpm eval 1.5b` each keep their own line up to date.
import { readFileSync } from 'node:fs';
import { writeReadmeBlock } from './readme.mjs';

const run = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const total = run.results.length;
const passed = run.results.filter((r) => r.pass).length;
const faults = (who) => run.results.filter((r) => !r.pass && r.fault === who).length;
const seconds = Math.round(run.results.reduce((s, r) => s + r.seconds, 0));
const failed = run.results.filter((r) => !r.pass).map((r) => `${r.id} (${r.fault})`);
const line =
  `${run.label}: passed ${passed}/${total} (${Math.round((100 * passed) / total)}%), ` +
  `${faults('model')} model and ${faults('flotilla')} flotilla failures, ${seconds} s, ${run.startedAt.slice(0, 10)}` +
  (failed.length ? `\n  failed: ${failed.join(', ')}` : '');
const slot = (text) => ['qwen2.5-coder-0.5b-q4km', 'qwen2.5-coder-1.5b-q4km'].indexOf(text.split(':')[0]);
writeReadmeBlock('eval', [line], slot, new URL('../docs/eval.md', import.meta.url));
writeReadmeBlock(
  'eval',
  [
    `${run.label}: ${passed}/${total} goals passed (${Math.round((100 * passed) / total)}%); flotilla faults: ${faults('flotilla')}; ${run.startedAt.slice(0, 10)}`,
  ],
  slot,
);
