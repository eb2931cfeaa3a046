/**
 * Many rows in one SQL statement: the rows travel as one JSON array bound to
 * `?1` and are unpacked by `json_each`, so a batch costs one statement
 * whatever its size (D1's logs and messages are written this way).
 * `columns` maps each column to the JSON path of its value in one element
 * of the array (`$.id`, or `$[0].room` for an element that is an array).
 * `WHERE true` lets SQLite parse the `ON CONFLICT` that follows as an upsert.
 */
export function jsonRowsInsert(table: string, columns: Record<string, string>, onConflict: string): string {
  const names = Object.keys(columns);
  const values = names.map((name) => `json_extract(value, '${columns[name]}')`);
  return `INSERT INTO ${table} (${names.join(", ")})\nSELECT ${values.join(", ")}\nFROM json_each(?1) WHERE true\n${onConflict}`;
}
