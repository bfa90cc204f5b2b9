import { runWorker } from '@flotilla/runtime/worker';
import { researcher } from './index.js';

await runWorker(researcher);
