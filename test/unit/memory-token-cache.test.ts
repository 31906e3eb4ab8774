import { memoryStore } from '../../src/cache/memory-token-cache.ts';
import { systemClock } from '../../src/kernel/clock.ts';
import { runTokenCacheContract } from '../contract/token-cache-contract.ts';

runTokenCacheContract('memory', async () => {
  return { store: memoryStore(systemClock) };
});
