// Loaded with `node --import`: lets the bench import the e2e harness
// (test/e2e/*.ts), whose relative imports omit the `.ts` extension as
// bundlers allow. Node 22 runs the TypeScript itself
// (--experimental-transform-types); this hook only finds the files.
import { register } from "node:module";

register("./ts-resolve.mjs", import.meta.url);
