/**
 * Test helpers for backends: the shared conformance suite (requires vitest).
 * @packageDocumentation
 */
export { runConformanceSuite } from './conformance.js';
export type { ConformanceOptions } from './conformance.js';
