export { startFakeAnthropic } from './anthropic.js';
export { startFakeOpenAI } from './openai.js';
export { type FakeHandler, type FakeOptions, type FakeVendor, fakeEmbedding, type RecordedRequest } from './server.js';
export { type FakeStep, type FakeUsage, fakeReply } from './steps.js';
