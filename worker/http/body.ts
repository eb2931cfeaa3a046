/**
 * Reads a JSON request body: right content type, bounded size (the stream
 * is read with a cap, so a lying Content-Length cannot make us buffer more),
 * valid JSON, and the schema. Each failure is the contract's error.
 */
import * as v from "valibot";
import { describeIssues } from "../../protocol/schemas";
import { ApiError } from "./errors";

export async function readJsonBody<S extends v.GenericSchema>(request: Request, schema: S, maxBytes: number): Promise<v.InferOutput<S>> {
  requireJsonContentType(request);
  return parseJsonBytes(await readCappedBytes(request, maxBytes), schema);
}

export function requireJsonContentType(request: Request): void {
  const type = request.headers.get("content-type") ?? "";
  if (!/^application\/json\s*(;|$)/i.test(type)) {
    throw new ApiError("unsupported_media_type", "send the body as JSON with Content-Type: application/json");
  }
}

/** UTF-8 JSON checked against the schema (for routes that need the raw bytes first, e.g. to check a body hash). */
export function parseJsonBytes<S extends v.GenericSchema>(bytes: Uint8Array, schema: S): v.InferOutput<S> {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new ApiError("invalid_body", "body is not valid UTF-8");
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ApiError("invalid_body", "body is not valid JSON");
  }
  return validateBody(value, schema);
}

/** A parsed body checked against the schema: `400 invalid_body` naming the first failing field. */
export function validateBody<S extends v.GenericSchema>(value: unknown, schema: S): v.InferOutput<S> {
  const result = v.safeParse(schema, value);
  if (!result.success) throw new ApiError("invalid_body", describeIssues(result.issues));
  return result.output;
}

/** The body's bytes (of a request, or of a response the service fetched), at most maxBytes (413 beyond). */
export async function readCappedBytes(request: Pick<Request, "headers" | "body" | "arrayBuffer">, maxBytes: number): Promise<Uint8Array> {
  const tooLarge = () => new ApiError("payload_too_large", `request body is larger than ${maxBytes} bytes`);
  const length = request.headers.get("content-length");
  const declared = Number(length ?? "0");
  if (declared > maxBytes) throw tooLarge();
  if (!request.body) return new Uint8Array(0);
  if (length !== null && !request.headers.has("content-encoding")) {
    // A declared length within the cap: one read of the whole body (the runtime frames it by that length)
    // instead of a read per chunk; what arrived is checked again all the same. Not for an encoded body: a
    // fetched gzip response is decoded on the way in, so its Content-Length says nothing of what arrives.
    const bytes = new Uint8Array(await request.arrayBuffer());
    if (bytes.byteLength > maxBytes) throw tooLarge();
    return bytes;
  }
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel();
      throw tooLarge();
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}
