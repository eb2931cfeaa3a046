#!/usr/bin/env node
// Prints a client JWT signed with the local JWT_SECRET, for curl and CLI use.
//   npm run token -- alice --rooms lobby,support-* --role agent --name Alice --ttl 3600
import { SignJWT } from "jose";
import { parseArgs } from "node:util";
import { readDevVars } from "./read-dev-vars.mjs";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    rooms: { type: "string" },
    role: { type: "string" },
    name: { type: "string" },
    ttl: { type: "string", default: "86400" },
    vars: { type: "string", default: ".dev.vars" },
  },
});
const sub = positionals[0];
if (!sub) {
  console.error("usage: npm run token -- <user> [--rooms a,b,prefix-*] [--role agent] [--name Alice] [--ttl seconds]");
  process.exit(2);
}
const { JWT_SECRET } = readDevVars(values.vars);
if (!JWT_SECRET) {
  console.error(`no JWT_SECRET in ${values.vars}: run \`npm start\` once (it creates the file), or \`node scripts/dev-vars.mjs\``);
  process.exit(1);
}
const claims = { name: values.name ?? sub };
if (values.rooms) claims.rooms = values.rooms.split(",").map((r) => r.trim()).filter(Boolean);
if (values.role) claims.role = values.role;
const token = await new SignJWT(claims)
  .setProtectedHeader({ alg: "HS256", typ: "JWT" })
  .setSubject(sub)
  .setIssuedAt()
  .setExpirationTime(`${Number(values.ttl)}s`)
  .sign(new TextEncoder().encode(JWT_SECRET));
console.log(token);
