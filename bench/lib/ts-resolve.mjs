// Resolve hook (see register-ts.mjs): a relative import that Node cannot
// find is retried with `.ts` appended. Nothing else changes.
export async function resolve(specifier, context, nextResolve) {
  try {
    return await nextResolve(specifier, context);
  } catch (error) {
    const relative = specifier.startsWith("./") || specifier.startsWith("../");
    if (error?.code !== "ERR_MODULE_NOT_FOUND" || !relative || specifier.endsWith(".ts")) throw error;
    return nextResolve(`${specifier}.ts`, context);
  }
}
