import { MemoryStore, memoryBackend } from '../../src/backends/memory/index.js';
import { runConformanceSuite } from '../../src/testing/index.js';

const store = new MemoryStore();
runConformanceSuite({ name: 'memory', createBackend: () => memoryBackend({ store }) });
