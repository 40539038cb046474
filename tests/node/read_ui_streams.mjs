// Reads UI message streams with the AI SDK's own client code, as useChat does:
// parseJsonEventStream with uiMessageChunkSchema (DefaultChatTransport), then
// readUIMessageStream. Prints one JSON line per file: the last UIMessage, the
// chunks that failed validation and the errors the stream reported.
// Usage: node read_ui_streams.mjs FILE...
import { readFileSync } from 'node:fs';
import { parseJsonEventStream, readUIMessageStream, uiMessageChunkSchema } from 'ai';

for (const file of process.argv.slice(2)) {
  const body = new Response(readFileSync(file)).body;
  const invalid = [];
  const errors = [];
  const chunks = parseJsonEventStream({ stream: body, schema: uiMessageChunkSchema }).pipeThrough(
    new TransformStream({
      transform(result, controller) {
        if (result.success) controller.enqueue(result.value);
        else invalid.push(String(result.error));
      },
    }),
  );
  let message = null;
  try {
    for await (const snapshot of readUIMessageStream({
      stream: chunks,
      onError: error => errors.push(String(error?.message ?? error)),
    })) {
      message = snapshot;
    }
  } catch (error) {
    errors.push(String(error?.message ?? error));
  }
  process.stdout.write(JSON.stringify({ file, message, invalid, errors }) + '\n');
}
