// The README's figure blocks: what `pnpm bench` measured, between markers, so a run rewrites its own
// block and nothing else. Method text lives in docs/bench.md; a block holds only the runs.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const README = new URL('../README.md', import.meta.url);

/**
 * Puts `run` (lines of text) into the README block `<!-- name:start -->...<!-- name:end -->` as a
 * fenced run. A block keeps one run per slot (`slotOf` of a run's text, e.g. its Node major): a run
 * replaces the run of its own slot and leaves the others, sorted by slot. A missing block is added
 * after the last bench block, or at the end. `file`: another README (a package's own).
 */
export function writeReadmeBlock(name, run, slotOf = () => 0, file = README) {
  const text = readFileSync(file, 'utf8');
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  const block = new RegExp(`${start}[\\s\\S]*?${end}`);
  const old = block.exec(text)?.[0] ?? '';
  const runs = [...old.matchAll(/```\n([\s\S]*?)\n```/g)].map((m) => m[1]);
  const mine = run.join('\n');
  const kept = runs.filter((r) => slotOf(r) !== slotOf(mine));
  const fenced = [...kept, mine].sort((a, b) => slotOf(a) - slotOf(b)).map((r) => `\`\`\`\n${r}\n\`\`\``);
  const fresh = [start, ...fenced, end].join('\n');
  let updated;
  if (old) updated = text.replace(block, () => fresh);
  else {
    const lastBench = text.lastIndexOf(':end -->');
    const at = lastBench === -1 ? text.length : lastBench + ':end -->'.length;
    updated = `${text.slice(0, at)}\n\n${fresh}${text.slice(at)}`;
  }
  writeFileSync(file, updated);
  console.log(`${fileURLToPath(file)} updated (${name})`);
}
