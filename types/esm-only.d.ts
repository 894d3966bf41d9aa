/**
 * What TypeScript versions before 5.0 find when they resolve `distlock` with
 * `"moduleResolution": "node"` (node10), which ignores package.json `exports`.
 *
 * distlock is ESM-only, with one entry point per backend (`distlock/files`, `distlock/redis`, …)
 * declared in `exports`. Set `"moduleResolution"` to `"node16"` or `"nodenext"` (TypeScript 4.7+),
 * or `"bundler"` (TypeScript 5.0+). TypeScript 5 says so by itself, without this file.
 *
 * The alias below fails to compile on purpose, and the error names the fix: "Type
 * 'distlock_is_ESM_only_set_moduleResolution_to_node16_or_nodenext' does not satisfy the
 * constraint 'never'" (with `skipLibCheck` that error is hidden; then every import from distlock
 * fails with "has no exported member", and this file explains why).
 */
interface distlock_is_ESM_only_set_moduleResolution_to_node16_or_nodenext {
  readonly see: 'node_modules/distlock/types/esm-only.d.ts';
}

type Explain<Reason extends never> = Reason;

/** Compiling this reports the fix. */
export type Explanation = Explain<distlock_is_ESM_only_set_moduleResolution_to_node16_or_nodenext>;
