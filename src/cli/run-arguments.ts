/**
 * Where `distlock run`'s own options end and the command's begin. Like `flock` and `timeout`,
 * distlock reads its options up to the command's name, and everything from there on is the
 * command's: `distlock run KEY --ttl 1m make -j4` gives `-j4` to make, without `--`.
 */
import type { Command, Option } from 'commander';

/** The `run` option that `flag` (`--ttl`, `--ttl=5s`, `-b`, `-vb`) names, and whether it carries its value. */
function describeFlag(
  flag: string,
  options: readonly Option[],
): { takesValue: boolean; valueAttached: boolean } {
  if (flag.startsWith('--')) {
    const [name = ''] = flag.split('=', 1);
    const option = options.find((candidate) => candidate.long === name);
    const takesValue = option !== undefined && (option.required || option.optional);
    return { takesValue, valueAttached: flag.includes('=') };
  }
  // A cluster of short flags: the first that takes a value takes the rest of the cluster, or the
  // next argument when nothing is left.
  const letters = flag.slice(1);
  for (let i = 0; i < letters.length; i++) {
    const option = options.find((candidate) => candidate.short === `-${letters[i]}`);
    if (option !== undefined && (option.required || option.optional)) {
      return { takesValue: true, valueAttached: i < letters.length - 1 };
    }
  }
  return { takesValue: false, valueAttached: false };
}

/**
 * `argv` (as `process.argv`) with `--` put before the command's name in a `distlock run` that has
 * none: after KEY, the first argument that is neither one of run's options nor an option's value
 * starts the command. Other command lines come back unchanged. An unknown option before the
 * command's name stays where it is, for the parser to refuse.
 */
export function separateRunCommand(argv: readonly string[], run: Command): string[] {
  const args = [...argv];
  const runAt = args.findIndex((arg, i) => i >= 2 && !arg.startsWith('-'));
  if (runAt < 0 || args[runAt] !== run.name()) return args;
  let operands = 0;
  for (let i = runAt + 1; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') return args; // the user separated them already
    if (arg.startsWith('-') && arg !== '-') {
      const { takesValue, valueAttached } = describeFlag(arg, run.options);
      if (takesValue && !valueAttached) i++;
      continue;
    }
    operands++;
    if (operands === 2) {
      args.splice(i, 0, '--');
      return args;
    }
  }
  return args;
}
