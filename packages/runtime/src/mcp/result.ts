import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';

/** What an MCP tool call returns through the gateway: the server's content reduced to text, capped. */
export interface McpToolOutput {
  /** Text items joined; other items (images, audio, resources) named with their size, never inlined. */
  text: string;
  /** The server's structured result, when it gave one and it fits the cap. */
  structuredContent?: Record<string, unknown>;
  /** Present when something was cut to fit `maxResultChars`. */
  truncated?: true;
}

type Content = CallToolResult['content'][number];

function describe(item: Content): string {
  switch (item.type) {
    case 'text':
      return item.text;
    case 'image':
    case 'audio':
      return `[${item.type} ${item.mimeType}, ${item.data.length} base64 chars]`;
    case 'resource_link':
      return `[resource link ${item.uri}${item.name ? ` (${item.name})` : ''}]`;
    case 'resource':
      return 'text' in item.resource
        ? item.resource.text
        : `[resource ${item.resource.uri}, ${item.resource.blob.length} base64 chars]`;
    default:
      return `[${(item as { type: string }).type} content]`;
  }
}

/**
 * A server's result as data for the model. Everything in it is untrusted (the loop shows it in an
 * untrusted-data block); here it is only made bounded, so a huge result cannot fill the audit log,
 * the run book or the model's context.
 */
export function toToolOutput(result: CallToolResult, maxChars: number): McpToolOutput {
  let text = (result.content ?? []).map(describe).join('\n');
  let truncated = false;
  if (text.length > maxChars) {
    text = `${text.slice(0, maxChars)}…`;
    truncated = true;
  }
  const output: McpToolOutput = { text };
  if (result.structuredContent) {
    if ((JSON.stringify(result.structuredContent) ?? '').length <= maxChars)
      output.structuredContent = result.structuredContent;
    else truncated = true;
  }
  if (truncated) output.truncated = true;
  return output;
}

/** The text of an error result, capped, for the failure message. */
export function errorText(result: CallToolResult, maxChars: number): string {
  const text = (result.content ?? []).map(describe).join('\n') || 'no details';
  return text.length > maxChars ? `${text.slice(0, maxChars)}…` : text;
}
