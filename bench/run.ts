// `npm run bench [-- scenario...]`: runs the scenarios (all eight by default), prints tables, writes bench/results/latest.{json,md}
// (or, for a run of opt-in scenarios only, files named after them).
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { runAttribution } from './attribution.js';
import { runColdPath } from './cold-path.js';
import { runDayOne } from './day-one.js';
import { runFleet } from './fleet.js';
import { runFrameworks } from './frameworks.js';
import { runHotPath } from './hot-path.js';
import { runInstructions } from './instructions.js';
import { appNodePath, benchDir, goalMark, log, machine, markdownTable, nodeVersion, settings, textTable, type ScenarioResult } from './lib.js';
import { runMemory } from './memory.js';
import { runOutage } from './outage.js';
import { runProfile } from './profile.js';
import { runRuntimes } from './runtimes.js';

const scenarios: Record<string, () => Promise<ScenarioResult>> = {
  'hot-path': runHotPath,
  'cold-path': runColdPath,
  outage: runOutage,
  memory: runMemory,
  runtimes: runRuntimes,
  fleet: runFleet,
  attribution: runAttribution,
  frameworks: runFrameworks,
};
/**
 * Run only when named: profile and instructions re-run the hot-path apps under --cpu-prof / valgrind (instructions:
 * ~9 min); day-one registers 2 000 users over four runs (~4 min).
 */
const extras: Record<string, () => Promise<ScenarioResult>> = { profile: runProfile, instructions: runInstructions, 'day-one': runDayOne };

function printResult(result: ScenarioResult): void {
  for (const section of result.sections) {
    process.stdout.write(`\n== ${section.title}\n`);
    for (const note of section.notes) process.stdout.write(`   ${note}\n`);
    process.stdout.write(`${textTable(section.headers, section.rows)}\n`);
  }
}

function markdown(results: ScenarioResult[], info: ReturnType<typeof machine>, elapsedSec: number): string {
  const lines = [
    '# express-orq-identity benchmark',
    '',
    markdownTable(['machine', ''], [
      ['CPU', `${info.cpuModel} × ${info.cores}`],
      ['memory', `${info.totalMemGiB} GiB`],
      ['OS', info.os],
      ['Node', `${info.node} (the bench process)${process.env.BENCH_NODE ? `; apps on ${nodeVersion(appNodePath())}` : ''}`],
      ['date', info.date],
      ['settings', `BENCH_DURATION=${settings.durationSec} s, BENCH_ROUNDS=${settings.rounds}, BENCH_CONNECTIONS=${settings.connections}${process.env.BENCH_ROUNDS || process.env.BENCH_DURATION ? '' : ' (runtimes: 4 rounds × 3 s)'}`],
      ['run time', `${Math.round(elapsedSec)} s`],
    ]),
    '',
    '## Goals',
    '',
    ...results.flatMap((result) => result.goals.map((goal) => `- **${goalMark(goal.met)}** — ${result.name}: ${goal.goal} (${goal.detail})`)),
  ];
  for (const result of results) {
    for (const section of result.sections) {
      lines.push('', `## ${section.title}`, '', ...section.notes.map((note) => `${note}  `), '', markdownTable(section.headers, section.rows));
    }
  }
  return `${lines.join('\n')}\n`;
}

async function main(): Promise<void> {
  const known = { ...scenarios, ...extras };
  const names = process.argv.slice(2).filter((arg) => arg !== '--');
  const unknown = names.filter((name) => !(name in known));
  if (unknown.length > 0) {
    process.stderr.write(`unknown scenario ${unknown.join(', ')}; choose from ${Object.keys(known).join(', ')}\n`);
    process.exitCode = 2;
    return;
  }
  const chosen = names.length > 0 ? names : Object.keys(scenarios);
  const info = machine();
  process.stdout.write(`${info.cpuModel} × ${info.cores}, ${info.os}, Node ${info.node}, ${info.date}\n`);
  const started = performance.now();
  const results: ScenarioResult[] = [];
  for (const name of chosen) {
    log(`== ${name}`);
    const scenarioStarted = performance.now();
    const result = await (known[name] as () => Promise<ScenarioResult>)();
    log(`== ${name} took ${Math.round((performance.now() - scenarioStarted) / 1000)} s`);
    printResult(result);
    results.push(result);
  }
  const elapsedSec = (performance.now() - started) / 1000;
  process.stdout.write('\n== Goals\n');
  for (const result of results) {
    for (const goal of result.goals) process.stdout.write(`   ${goalMark(goal.met).padEnd(7)} ${result.name}: ${goal.goal} — ${goal.detail}\n`);
  }
  const outDir = path.join(benchDir, 'results');
  await mkdir(outDir, { recursive: true });
  const json = { machine: info, settings, elapsedSec, scenarios: Object.fromEntries(results.map((result) => [result.name, result])) };
  // Only the full default run replaces latest.*; a run of some scenarios (or of opt-in ones: profile, instructions)
  // gets files named after them, so a partial run never overwrites the published results of the others.
  const full = Object.keys(scenarios).every((name) => chosen.includes(name));
  const appNode = process.env.BENCH_NODE ? `-node${process.env.BENCH_NODE}` : '';
  const base = `${full ? 'latest' : chosen.join('-')}${appNode}`;
  await writeFile(path.join(outDir, `${base}.json`), `${JSON.stringify(json, null, 2)}\n`);
  await writeFile(path.join(outDir, `${base}.md`), markdown(results, info, elapsedSec));
  process.stdout.write(`\nTotal ${Math.round(elapsedSec)} s. Wrote bench/results/${base}.json and ${base}.md.\n`);
}

await main();
