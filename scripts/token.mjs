#!/usr/bin/env node
// Prints a client JWT for curl and CLI use: HS256 with the first secret of the
// local JWT_SECRET, or, with --key, signed by a private key file the way an
// identity provider signs (RS256/384/512, PS256, ES256/384, EdDSA), to try
// JWT_PUBLIC_KEYS / JWT_JWKS_URL locally.
//   npm run token -- alice --rooms lobby,support-* --role agent --name Alice --ttl 3600
//   npm run token -- alice --rooms lobby --key private.pem --alg RS256 --kid k1
// The claims go where .dev.vars says the service reads them (JWT_USER_ID_CLAIM,
// JWT_NAME_CLAIM, JWT_ROOMS_CLAIM; dotted paths become nested objects), and
// iss / aud are JWT_ISSUER / JWT_AUDIENCE unless --iss / --aud say otherwise.
import { importPKCS8, SignJWT } from "jose";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { readDevVars } from "./read-dev-vars.mjs";

const USAGE = "usage: npm run token -- <user> [--rooms a,b,prefix-*] [--role agent] [--name Alice] [--ttl seconds] [--iss url] [--aud id] [--key private.pem --alg RS256|RS384|RS512|PS256|ES256|ES384|EdDSA [--kid id]]";
const PUBLIC_KEY_ALGS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"];

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    rooms: { type: "string" },
    role: { type: "string" },
    name: { type: "string" },
    ttl: { type: "string", default: "86400" },
    iss: { type: "string" },
    aud: { type: "string" },
    key: { type: "string" },
    alg: { type: "string" },
    kid: { type: "string" },
    vars: { type: "string", default: ".dev.vars" },
  },
});
const fail = (message, code = 2) => {
  console.error(message);
  process.exit(code);
};
const user = positionals[0];
if (!user) fail(USAGE);
const vars = readDevVars(values.vars);
const first = (list) => (list ?? "").split(",").map((s) => s.trim()).find(Boolean);

/** Sets `value` at a dotted path (`app_metadata.rooms`), making the objects on the way. */
function setClaim(claims, path, value) {
  const parts = path.split(".");
  let target = claims;
  for (const part of parts.slice(0, -1)) target = target[part] ??= {};
  target[parts.at(-1)] = value;
}

const claims = {};
setClaim(claims, vars.JWT_USER_ID_CLAIM || "sub", user);
setClaim(claims, vars.JWT_NAME_CLAIM || "name", values.name ?? user);
if (values.rooms) setClaim(claims, vars.JWT_ROOMS_CLAIM || "rooms", values.rooms.split(",").map((r) => r.trim()).filter(Boolean));
if (values.role) claims.role = values.role;
const issuer = values.iss ?? first(vars.JWT_ISSUER);
const audience = values.aud ?? first(vars.JWT_AUDIENCE);

let alg = "HS256";
let key;
if (values.key) {
  alg = values.alg ?? fail(`--key needs --alg (one of ${PUBLIC_KEY_ALGS.join(", ")})`);
  if (!PUBLIC_KEY_ALGS.includes(alg)) fail(`--alg must be one of ${PUBLIC_KEY_ALGS.join(", ")}`);
  let pem;
  try {
    pem = readFileSync(values.key, "utf8");
  } catch (error) {
    fail(`cannot read ${values.key}: ${error.message}`, 1);
  }
  try {
    key = await importPKCS8(pem, alg);
  } catch (error) {
    fail(`${values.key} is not a PKCS#8 private key ("-----BEGIN PRIVATE KEY-----") for ${alg}: ${error.message}\n(convert with \`openssl pkcs8 -topk8 -nocrypt -in ${values.key}\`)`, 1);
  }
} else {
  const secret = first(vars.JWT_SECRET);
  if (!secret) fail(`no JWT_SECRET in ${values.vars}: run \`npm start\` once (it creates the file), or \`node scripts/dev-vars.mjs\``, 1);
  key = new TextEncoder().encode(secret);
}

const jwt = new SignJWT(claims)
  .setProtectedHeader({ alg, typ: "JWT", ...(values.kid ? { kid: values.kid } : {}) })
  .setIssuedAt()
  .setExpirationTime(`${Number(values.ttl)}s`);
if (issuer) jwt.setIssuer(issuer);
if (audience) jwt.setAudience(audience);
console.log(await jwt.sign(key));
