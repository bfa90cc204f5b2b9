import { runWorker } from '@flotilla/runtime';
import { researcher } from './index.js';

await runWorker(researcher);
