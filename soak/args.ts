// The command line of `npm run soak`: --minutes N [--instances K] [--rate R] [--seed S] [--out DIR].

export interface SoakArgs {
  /** How long the load runs, in minutes (fractions allowed). */
  minutes: number;
  /** App processes sharing the Redis. */
  instances: number;
  /** Requests per second the driver sends, fleet-wide. */
  rate: number;
  /** Seed of the population's random choices, so a run can be repeated. */
  seed: number;
  /** Where the JSON and SVG go. */
  out: string;
}

export const DEFAULT_ARGS: SoakArgs = { minutes: 3, instances: 2, rate: 20, seed: 1, out: 'bench/results' };

const usage = 'usage: npm run soak -- --minutes N [--instances K] [--rate R] [--seed S] [--out DIR]';

export function parseArgs(argv: readonly string[]): SoakArgs {
  const args: SoakArgs = { ...DEFAULT_ARGS };
  for (let index = 0; index < argv.length; index += 1) {
    const flag = argv[index] as string;
    const value = argv[index + 1];
    if (value === undefined) throw new Error(`${flag} needs a value\n${usage}`);
    index += 1;
    switch (flag) {
      case '--minutes':
        args.minutes = positive(flag, value);
        break;
      case '--instances':
        args.instances = positiveInteger(flag, value);
        break;
      case '--rate':
        args.rate = positive(flag, value);
        break;
      case '--seed':
        args.seed = positiveInteger(flag, value);
        break;
      case '--out':
        args.out = value;
        break;
      default:
        throw new Error(`unknown option ${flag}\n${usage}`);
    }
  }
  return args;
}

function positive(flag: string, value: string): number {
  const number = Number(value);
  if (!Number.isFinite(number) || number <= 0) throw new Error(`${flag} must be a positive number, got ${value}\n${usage}`);
  return number;
}

function positiveInteger(flag: string, value: string): number {
  const number = positive(flag, value);
  if (!Number.isInteger(number)) throw new Error(`${flag} must be a whole number, got ${value}\n${usage}`);
  return number;
}
