/**
 * Which push endpoints the service will POST to. A subscription's endpoint
 * is a URL chosen by whoever posts the subscription, and the room later
 * fetches it: without a policy, any user could make the service send
 * requests into private networks or to itself. So endpoints must be `https`
 * on a public host: no loopback, private, link-local, CGNAT, multicast or
 * reserved address literals, no `localhost`, no single-label or
 * local-only names, no credentials in the URL. Redirects are not followed
 * when sending (server/push/sender.ts), so a public endpoint cannot bounce
 * the request elsewhere.
 *
 * `PUSH_ALLOW_HTTP_ENDPOINTS` lifts the rule for local push services in
 * tests and under `npm start`; it is never set in production.
 *
 * Host names are not resolved here (a Worker cannot resolve DNS): a public
 * name pointing at a private address is left to the platform, whose
 * outbound fetch does not reach private networks.
 */

/** Names that only mean something inside one machine or network (RFC 6761, 6762, 8375). */
const LOCAL_SUFFIXES = [".localhost", ".local", ".internal", ".intranet", ".lan", ".home.arpa", ".localdomain"];

/** IPv4 ranges that are not publicly routable: [first octets as a 32-bit number, prefix length]. */
const PRIVATE_V4: [string, number][] = [
  ["0.0.0.0", 8], // "this network"
  ["10.0.0.0", 8],
  ["100.64.0.0", 10], // CGNAT
  ["127.0.0.0", 8], // loopback
  ["169.254.0.0", 16], // link-local (cloud metadata services)
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.0.2.0", 24], // documentation
  ["192.88.99.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15], // benchmarking
  ["198.51.100.0", 24],
  ["203.0.113.0", 24],
  ["224.0.0.0", 4], // multicast
  ["240.0.0.0", 4], // reserved, broadcast
];

function v4ToNumber(address: string): number | undefined {
  const parts = address.split(".");
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) return undefined;
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

function isPrivateV4(address: string): boolean {
  const n = v4ToNumber(address);
  if (n === undefined) return false;
  return PRIVATE_V4.some(([base, bits]) => {
    const size = 2 ** (32 - bits);
    return Math.floor(n / size) === Math.floor(v4ToNumber(base)! / size);
  });
}

/** The 8 groups of an IPv6 address as the URL parser writes it (compressed, no zone, no dotted tail). */
function v6Groups(address: string): number[] | undefined {
  const [head, tail, extra] = address.split("::");
  if (extra !== undefined) return undefined;
  const parse = (part: string | undefined) => (part ? part.split(":").map((g) => parseInt(g, 16)) : []);
  const left = parse(head);
  const right = parse(tail);
  if ([...left, ...right].some((g) => !Number.isInteger(g) || g < 0 || g > 0xffff)) return undefined;
  if (tail === undefined) return left.length === 8 ? left : undefined;
  const zeros = 8 - left.length - right.length;
  return zeros < 1 ? undefined : [...left, ...Array<number>(zeros).fill(0), ...right];
}

/** Only global unicast (2000::/3) outside the documentation range is public. */
function isPublicV6(address: string): boolean {
  const groups = v6Groups(address);
  if (!groups) return false;
  const first = groups[0]!;
  if ((first & 0xe000) !== 0x2000) return false; // ::1, ::, ::ffff:a.b.c.d, fc00::/7, fe80::/10, ff00::/8, 64:ff9b::/96 …
  if (first === 0x2001 && groups[1] === 0x0db8) return false; // 2001:db8::/32 documentation
  return true;
}

/**
 * Why `endpoint` is refused, or undefined when it may be used. The URL
 * parser has already normalised the host (`0x7f.1` → `127.0.0.1`,
 * `[::ffff:127.0.0.1]` → `[::ffff:7f00:1]`, lowercase names).
 */
export function refuseEndpoint(endpoint: string, allowInsecure: boolean): string | undefined {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return "must be an absolute URL";
  }
  if (url.protocol !== "https:" && !(allowInsecure && url.protocol === "http:")) return "must be an https URL";
  if (url.username || url.password) return "must not carry credentials";
  if (allowInsecure) return undefined;
  const host = url.hostname.replace(/\.$/, "");
  if (host.startsWith("[")) return isPublicV6(host.slice(1, -1)) ? undefined : "must be on a public host (not a loopback, private or reserved address)";
  if (v4ToNumber(host) !== undefined) return isPrivateV4(host) ? "must be on a public host (not a loopback, private or reserved address)" : undefined;
  if (host === "localhost" || LOCAL_SUFFIXES.some((suffix) => host.endsWith(suffix))) return "must be on a public host (not a local name)";
  if (!host.includes(".")) return "must be on a public host (a fully qualified name)";
  return undefined;
}
