// Writes tests/fixtures/ai_sdk_ui/*.sse with the AI SDK's own server code:
// streamText over a mock model, toUIMessageStream, createUIMessageStreamResponse.
// Run: node tests/node/make_fixtures.mjs (after npm install --prefix tests/node).
import { writeFileSync } from 'node:fs';
import { createUIMessageStreamResponse, streamText, tool, toUIMessageStream, jsonSchema } from 'ai';
import { MockLanguageModelV4, convertArrayToReadableStream } from 'ai/test';

const out = new URL('../fixtures/ai_sdk_ui/', import.meta.url);

const usage = (input, output, reasoning, cacheRead) => ({
  inputTokens: { total: input, noCache: input - (cacheRead ?? 0), cacheRead, cacheWrite: undefined },
  outputTokens: { total: output, text: output - (reasoning ?? 0), reasoning },
});

function model(...steps) {
  let step = 0;
  return new MockLanguageModelV4({
    doStream: async () => ({ stream: convertArrayToReadableStream(steps[step++]) }),
  });
}

const meta = { type: 'response-metadata', id: 'resp_fixture_1', modelId: 'mock-model', timestamp: new Date(0) };

async function write(name, options, { metadata = true, ids = true } = {}) {
  const result = streamText({ prompt: 'hi', onError: () => {}, ...options });
  const stream = toUIMessageStream({
    stream: result.stream,
    generateMessageId: ids ? () => 'msg_fixture_1' : undefined,
    tools: options.tools,
    onError: error => (error instanceof Error ? error.message : String(error)),
    messageMetadata: metadata
      ? ({ part }) => {
          if (part.type === 'start') return { model: 'mock-model' };
          if (part.type === 'finish') return { usage: part.totalUsage };
        }
      : undefined,
  });
  const response = createUIMessageStreamResponse({ stream });
  writeFileSync(new URL(`${name}.sse`, out), await response.text());
}

await write('text', {
  model: model([
    meta,
    { type: 'text-start', id: 't1' },
    { type: 'text-delta', id: 't1', delta: 'Hello, ' },
    { type: 'text-delta', id: 't1', delta: 'wörld! 👋' },
    { type: 'text-end', id: 't1' },
    { type: 'finish', finishReason: { unified: 'stop', raw: 'stop' }, usage: usage(12, 5, undefined, 4) },
  ]),
});

await write('reasoning-tool-call', {
  model: model([
    meta,
    { type: 'reasoning-start', id: 'r1' },
    { type: 'reasoning-delta', id: 'r1', delta: 'The user wants the weather. ' },
    { type: 'reasoning-delta', id: 'r1', delta: 'I will call the tool.' },
    { type: 'reasoning-end', id: 'r1', providerMetadata: { anthropic: { signature: 'sig-abc' } } },
    { type: 'reasoning-start', id: 'r2', providerMetadata: { anthropic: { redactedData: 'redacted-xyz' } } },
    { type: 'reasoning-end', id: 'r2' },
    { type: 'text-start', id: 't1' },
    { type: 'text-delta', id: 't1', delta: 'Let me check.' },
    { type: 'text-end', id: 't1' },
    { type: 'tool-input-start', id: 'call_1', toolName: 'get_weather' },
    { type: 'tool-input-delta', id: 'call_1', delta: '{"city":' },
    { type: 'tool-input-delta', id: 'call_1', delta: '"Paris"}' },
    { type: 'tool-input-end', id: 'call_1' },
    { type: 'tool-call', toolCallId: 'call_1', toolName: 'get_weather', input: '{"city":"Paris"}' },
    { type: 'tool-call', toolCallId: 'call_2', toolName: 'get_time', input: '{"zone":"CET"}' },
    { type: 'finish', finishReason: { unified: 'tool-calls', raw: 'tool_use' }, usage: usage(30, 20, 12, undefined) },
  ]),
  tools: {
    get_weather: tool({ inputSchema: jsonSchema({ type: 'object' }) }),
    get_time: tool({ inputSchema: jsonSchema({ type: 'object' }) }),
  },
});

await write('tool-executed-two-steps', {
  model: model(
    [
      meta,
      { type: 'tool-input-start', id: 'call_1', toolName: 'add' },
      { type: 'tool-input-delta', id: 'call_1', delta: '{"a":1,"b":2}' },
      { type: 'tool-input-end', id: 'call_1' },
      { type: 'tool-call', toolCallId: 'call_1', toolName: 'add', input: '{"a":1,"b":2}' },
      { type: 'finish', finishReason: { unified: 'tool-calls', raw: 'tool_calls' }, usage: usage(10, 5) },
    ],
    [
      meta,
      { type: 'text-start', id: 't2' },
      { type: 'text-delta', id: 't2', delta: '1 + 2 = 3' },
      { type: 'text-end', id: 't2' },
      { type: 'finish', finishReason: { unified: 'stop', raw: 'stop' }, usage: usage(20, 6) },
    ],
  ),
  tools: {
    add: tool({ inputSchema: jsonSchema({ type: 'object' }), execute: async ({ a, b }) => a + b }),
  },
  stopWhen: () => false,
  maxSteps: 2,
});

await write(
  'error-midstream',
  {
    model: model([
      meta,
      { type: 'text-start', id: 't1' },
      { type: 'text-delta', id: 't1', delta: 'Partial ' },
      { type: 'error', error: new Error('Overloaded') },
    ]),
  },
  { metadata: false, ids: false },
);
