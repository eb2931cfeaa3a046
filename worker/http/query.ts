/** Validates a request's query string against a valibot schema. */
import * as v from "valibot";
import { describeIssues } from "../../protocol/schemas";
import { ApiError } from "./errors";

export function parseQuery<S extends v.GenericSchema>(url: URL, schema: S): v.InferOutput<S> {
  // No prototype: a parameter named `constructor` or `__proto__` is just an unknown parameter.
  const params: Record<string, string> = Object.create(null);
  for (const [key, value] of url.searchParams) {
    if (Object.hasOwn(params, key)) throw new ApiError("invalid_query", `${key}: given more than once`);
    params[key] = value;
  }
  const result = v.safeParse(schema, params);
  if (!result.success) throw new ApiError("invalid_query", describeIssues(result.issues));
  return result.output;
}
