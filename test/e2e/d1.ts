/**
 * Reads the local D1 database of a DevServer, read-only, straight from the
 * SQLite file wrangler keeps under its --persist-to directory: what the
 * service stored, without an API of its own for it.
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";

export function d1Rows<T = Record<string, unknown>>(persistDir: string, sql: string, ...params: (string | number | null)[]): T[] {
  const dir = join(persistDir, "v3/d1/miniflare-D1DatabaseObject");
  const file = readdirSync(dir).find((name) => name.endsWith(".sqlite") && name !== "metadata.sqlite");
  if (!file) throw new Error(`no D1 database under ${dir}`);
  const db = new DatabaseSync(join(dir, file), { readOnly: true });
  try {
    return db.prepare(sql).all(...params) as T[];
  } finally {
    db.close();
  }
}
