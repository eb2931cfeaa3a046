/**
 * A local Web Push service, run by the tests on 127.0.0.1, that behaves like
 * a browser vendor's (RFC 8030): each "device" gets an endpoint
 * `http://127.0.0.1:<port>/push/<id>` and a subscription whose private key
 * only this helper knows. Every push request is checked the way a vendor
 * checks it, and decrypted:
 *
 *  - `Authorization: vapid t=<JWT>, k=<key>` (RFC 8292): `k` must be the
 *    applicationServerKey the device subscribed with; the JWT must be ES256,
 *    verify with `k`, have `aud` = the endpoint's origin, an `exp` in the
 *    future and at most 24 h away, and a `mailto:`/`https:` `sub`;
 *  - `TTL` present, `Content-Encoding: aes128gcm`, body ≤ 4096 bytes;
 *  - the body is decrypted per RFC 8188/8291 with the device's ECDH key and
 *    auth secret: ECDH P-256 (WebCrypto), HKDF-SHA-256 written out with
 *    node:crypto HMACs, AES-128-GCM with node:crypto's decipher. None of it
 *    shares code with the implementation under test.
 *
 * A request that fails a check is answered 400/401/403 and recorded with
 * its error. Otherwise the device answers what the test scripted (201 by
 * default; 410, 429, 500, … on demand), optionally held unanswered until released.
 */
import { createDecipheriv, createHmac, randomBytes, webcrypto } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";

const subtle = webcrypto.subtle;
const b64url = (bytes: Uint8Array | ArrayBuffer) => Buffer.from(bytes instanceof ArrayBuffer ? new Uint8Array(bytes) : bytes).toString("base64url");
const hmac = (key: Uint8Array, data: Uint8Array) => new Uint8Array(createHmac("sha256", key).update(data).digest());
const concat = (...parts: Uint8Array[]) => new Uint8Array(Buffer.concat(parts));
const text = (s: string) => new TextEncoder().encode(s);

export interface ReceivedPush {
  /** What the service answered. */
  status: number;
  /** Why a request was refused (status 400/401/403). */
  error?: string;
  /** The decrypted JSON, when the request was valid. */
  payload?: any;
  ttl?: string;
  urgency?: string;
  claims?: { aud: string; exp: number; sub: string };
  bodyBytes: number;
  at: number;
}

export interface SubscriptionJson {
  endpoint: string;
  expirationTime: null;
  keys: { p256dh: string; auth: string };
}

export class PushDevice {
  readonly received: ReceivedPush[] = [];
  /** Statuses to answer, in order; 201 once they run out. */
  readonly script: number[] = [];
  /** While set (`hold()`), each request waits here, received and unanswered, until `release()`. */
  #gate?: Promise<void>;
  #release?: () => void;
  /** Requests waiting at the gate now. */
  held = 0;
  /** Where a scripted 3xx answer points (a sender must not follow it). */
  redirectTo = "";
  #waiters: (() => void)[] = [];

  constructor(
    readonly id: string,
    readonly endpoint: string,
    readonly applicationServerKey: string,
    readonly privateKey: CryptoKey,
    readonly publicKey: Uint8Array,
    readonly authSecret: Uint8Array,
  ) {}

  get subscription(): SubscriptionJson {
    return { endpoint: this.endpoint, expirationTime: null, keys: { p256dh: b64url(this.publicKey), auth: b64url(this.authSecret) } };
  }

  /** Answer these statuses to the next requests (then 201 again). */
  answer(...statuses: number[]): this {
    this.script.push(...statuses);
    return this;
  }

  /** Decrypted payloads of the pushes this device accepted (2xx). */
  get delivered(): any[] {
    return this.received.filter((r) => r.status >= 200 && r.status < 300).map((r) => r.payload);
  }

  record(push: ReceivedPush): void {
    this.received.push(push);
    this.#wake();
  }

  #wake(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }

  /** Re-checks `done` whenever a request arrives or is held; a safety-net timeout names what was missing. */
  async #until(done: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`device ${this.id}: ${what()} after ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => (clearTimeout(timer), resolve()));
      });
    }
  }

  /** A push service that takes requests and does not answer them until `release()`. */
  hold(): void {
    this.#gate = new Promise((resolve) => (this.#release = resolve));
  }

  release(): void {
    this.#gate = undefined;
    this.#release?.();
  }

  /** Called by the service for each request: returns once the device may answer it. */
  async passGate(): Promise<void> {
    const gate = this.#gate;
    if (!gate) return;
    this.held++;
    this.#wake();
    await gate;
    this.held--;
  }

  /** Waits until `n` requests wait at the gate. */
  async untilHeld(n = 1, timeoutMs = 30_000): Promise<void> {
    await this.#until(() => this.held >= n, timeoutMs, () => `${this.held} of ${n} push requests held`);
  }

  /** Waits until `n` requests have arrived and been answered (whatever the answer), or fails after `timeoutMs`. */
  async waitForRequests(n: number, timeoutMs = 30_000): Promise<ReceivedPush[]> {
    await this.#until(() => this.received.length >= n, timeoutMs, () => `${this.received.length} of ${n} push requests`);
    for (const push of this.received) if (push.error) throw new Error(`device ${this.id}: push refused: ${push.error}`);
    return this.received;
  }
}

export class PushService {
  readonly #devices = new Map<string, PushDevice>();

  private constructor(
    private readonly server: Server,
    readonly origin: string,
  ) {}

  static async start(): Promise<PushService> {
    let service!: PushService;
    const server = createServer((req, res) => void service.#handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    if (!address || typeof address === "string") throw new Error("no address");
    service = new PushService(server, `http://127.0.0.1:${address.port}`);
    return service;
  }

  /** A browser subscribing with the server's applicationServerKey: a fresh ECDH key pair and auth secret. */
  async newDevice(applicationServerKey: string): Promise<PushDevice> {
    const pair = (await subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, ["deriveBits"])) as CryptoKeyPair;
    const publicKey = new Uint8Array(await subtle.exportKey("raw", pair.publicKey));
    const id = randomBytes(12).toString("hex");
    const device = new PushDevice(id, `${this.origin}/push/${id}`, applicationServerKey, pair.privateKey, publicKey, new Uint8Array(randomBytes(16)));
    this.#devices.set(id, device);
    return device;
  }

  /** Every request of every device, for "nobody else got anything" checks. */
  get allReceived(): number {
    let n = 0;
    for (const device of this.#devices.values()) n += device.received.length;
    return n;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = new Uint8Array(Buffer.concat(chunks));
    const id = /^\/push\/([0-9a-f]+)$/.exec(req.url ?? "")?.[1];
    const device = id ? this.#devices.get(id) : undefined;
    if (!device || req.method !== "POST") {
      res.writeHead(404).end();
      return;
    }
    const push: ReceivedPush = { status: 0, bodyBytes: body.byteLength, at: Date.now() };
    const header = (name: string) => {
      const value = req.headers[name];
      return Array.isArray(value) ? value[0] : value;
    };
    push.ttl = header("ttl");
    push.urgency = header("urgency");
    try {
      push.claims = await this.#verifyVapid(header("authorization"), device);
    } catch (error) {
      return this.#refuse(res, device, push, 401, `VAPID: ${(error as Error).message}`);
    }
    if (!push.ttl || !/^\d+$/.test(push.ttl)) return this.#refuse(res, device, push, 400, "missing or invalid TTL header");
    if (header("content-encoding") !== "aes128gcm") return this.#refuse(res, device, push, 400, `content-encoding is ${header("content-encoding")}`);
    if (body.byteLength > 4096) return this.#refuse(res, device, push, 413, `body is ${body.byteLength} bytes`);
    try {
      push.payload = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(await decrypt(body, device)));
    } catch (error) {
      return this.#refuse(res, device, push, 400, `decryption: ${(error as Error).message}`);
    }
    await device.passGate();
    push.status = device.script.shift() ?? 201;
    const headers: Record<string, string> = {};
    if (push.status === 201) headers.location = `${this.origin}/message/${randomBytes(8).toString("hex")}`;
    if (push.status >= 300 && push.status < 400 && device.redirectTo) headers.location = device.redirectTo;
    res.writeHead(push.status, headers).end(push.status >= 400 ? `scripted ${push.status}` : undefined);
    device.record(push);
  }

  #refuse(res: ServerResponse, device: PushDevice, push: ReceivedPush, status: number, error: string): void {
    push.status = status;
    push.error = error;
    res.writeHead(status).end(error);
    device.record(push);
  }

  /** RFC 8292: `vapid t=<jwt>, k=<public key>`, ES256, aud = our origin, exp within 24 h. */
  async #verifyVapid(authorization: string | undefined, device: PushDevice): Promise<{ aud: string; exp: number; sub: string }> {
    const match = /^vapid t=([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+),\s*k=([A-Za-z0-9_-]+)$/.exec(authorization ?? "");
    if (!match) throw new Error(`authorization header is not "vapid t=…, k=…": ${authorization}`);
    const [, jwt, k] = match as unknown as [string, string, string];
    if (k !== device.applicationServerKey) throw new Error("k is not the key the subscription was made with");
    const [h, p, s] = jwt.split(".") as [string, string, string];
    const header = JSON.parse(Buffer.from(h, "base64url").toString());
    if (header.alg !== "ES256") throw new Error(`alg is ${header.alg}`);
    const key = await subtle.importKey("raw", Buffer.from(k, "base64url"), { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);
    const valid = await subtle.verify({ name: "ECDSA", hash: "SHA-256" }, key, Buffer.from(s, "base64url"), text(`${h}.${p}`));
    if (!valid) throw new Error("signature does not verify");
    const claims = JSON.parse(Buffer.from(p, "base64url").toString());
    const now = Math.floor(Date.now() / 1000);
    if (claims.aud !== this.origin) throw new Error(`aud is ${claims.aud}, not ${this.origin}`);
    if (typeof claims.exp !== "number" || claims.exp <= now) throw new Error(`exp ${claims.exp} is not in the future`);
    if (claims.exp > now + 24 * 3600) throw new Error(`exp ${claims.exp} is more than 24 h away`);
    if (typeof claims.sub !== "string" || !/^(mailto:|https:)/.test(claims.sub)) throw new Error(`sub is ${claims.sub}`);
    return claims;
  }
}

/** RFC 8188 aes128gcm with the RFC 8291 key derivation, from the receiving side. */
async function decrypt(body: Uint8Array, device: PushDevice): Promise<Uint8Array> {
  if (body.byteLength < 21) throw new Error("shorter than the header");
  const salt = body.subarray(0, 16);
  const recordSize = new DataView(body.buffer, body.byteOffset + 16, 4).getUint32(0);
  const idLength = body[20]!;
  const senderKey = body.subarray(21, 21 + idLength);
  if (idLength !== 65 || senderKey[0] !== 0x04) throw new Error(`keyid is not an uncompressed P-256 point (${idLength} bytes)`);
  if (recordSize < 18) throw new Error(`record size ${recordSize}`);
  const ciphertext = body.subarray(21 + idLength);

  const senderPublic = await subtle.importKey("raw", senderKey, { name: "ECDH", namedCurve: "P-256" }, false, []);
  const ecdhSecret = new Uint8Array(await subtle.deriveBits({ name: "ECDH", public: senderPublic }, device.privateKey, 256));
  // RFC 8291 §3.3-3.4: IKM = HKDF(auth_secret, ecdh_secret, "WebPush: info" || 0 || ua_public || as_public, 32)
  const prkKey = hmac(device.authSecret, ecdhSecret);
  const ikm = hmac(prkKey, concat(text("WebPush: info\0"), device.publicKey, senderKey, Uint8Array.of(1))).subarray(0, 32);
  // RFC 8188 §2.2-2.3: CEK and NONCE from HKDF(salt, IKM)
  const prk = hmac(salt, ikm);
  const cek = hmac(prk, concat(text("Content-Encoding: aes128gcm\0"), Uint8Array.of(1))).subarray(0, 16);
  const nonce = hmac(prk, concat(text("Content-Encoding: nonce\0"), Uint8Array.of(1))).subarray(0, 12);

  const plain: Uint8Array[] = [];
  const records = Math.ceil(ciphertext.byteLength / recordSize);
  for (let i = 0; i < records; i++) {
    const record = ciphertext.subarray(i * recordSize, (i + 1) * recordSize);
    const iv = Buffer.from(nonce);
    iv.writeUInt32BE((iv.readUInt32BE(8) ^ i) >>> 0, 8); // NONCE XOR seq (seq < 2^32 here)
    const decipher = createDecipheriv("aes-128-gcm", cek, iv);
    decipher.setAuthTag(record.subarray(record.byteLength - 16));
    const padded = new Uint8Array(Buffer.concat([decipher.update(record.subarray(0, record.byteLength - 16)), decipher.final()]));
    let end = padded.byteLength - 1;
    while (end >= 0 && padded[end] === 0) end--;
    const last = i === records - 1;
    if (end < 0 || padded[end] !== (last ? 2 : 1)) throw new Error(`record ${i} has no ${last ? "last" : ""} record delimiter`);
    plain.push(padded.subarray(0, end));
  }
  return concat(...plain);
}

/** A VAPID key pair as .dev.vars holds it: the raw public point and the private scalar, base64url. */
export async function vapidKeyPair(): Promise<{ publicKey: string; privateKey: string }> {
  const pair = (await subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"])) as CryptoKeyPair;
  const publicKey = b64url(await subtle.exportKey("raw", pair.publicKey));
  const { d } = await subtle.exportKey("jwk", pair.privateKey);
  return { publicKey, privateKey: d! };
}
