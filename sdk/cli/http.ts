/**
 * One JSON POST over node's http/https (through ethers' FetchRequest). Not the global `fetch`: it refuses the
 * "bad ports" of the browser fetch standard (e.g. 6000), which a local node or order book may well use.
 */
import { FetchRequest } from "ethers";

export interface HttpReply {
  status: number;
  statusMessage: string;
  text: string;
}

/** POSTs `body` as JSON; network failures throw (with a system `code`), any HTTP status resolves. */
export async function postJson(url: string, body: unknown, timeoutMs: number): Promise<HttpReply> {
  const request = new FetchRequest(url);
  request.method = "POST";
  request.body = JSON.stringify(body);
  request.setHeader("content-type", "application/json");
  request.setHeader("accept", "application/json");
  request.timeout = timeoutMs;
  request.setThrottleParams({ maxAttempts: 1 });
  const response = await request.send();
  let text = "";
  try {
    text = response.bodyText;
  } catch {
    text = "";
  }
  return { status: response.statusCode, statusMessage: response.statusMessage, text };
}

/** The server's own words from an error response: `{error:{message}}`, `{error}`, `{message}`, or the text. */
export function serverMessage(text: string): string {
  try {
    const body = JSON.parse(text) as { error?: unknown; message?: unknown };
    const error = body.error as { message?: unknown } | string | undefined;
    const message = typeof error === "object" && error !== null ? error.message : (error ?? body.message);
    if (typeof message === "string" && message.trim()) return message.split("\n")[0].trim();
  } catch {
    // not JSON: the text itself
  }
  const line = text.trim().split("\n")[0] ?? "";
  return line.length > 200 ? `${line.slice(0, 197)}...` : line;
}
