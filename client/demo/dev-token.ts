/**
 * Tokens for the demo: `POST /dev/token` mints one for any user and room.
 * The route exists only in local development (DEV_TOKENS=1 in .dev.vars);
 * a real app gets its token from its own backend instead.
 */
export class DevTokenUnavailable extends Error {}

export async function mintDevToken(user: string, name: string): Promise<string> {
  const response = await fetch("/dev/token", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ user, name }),
  });
  if (response.status === 404) {
    throw new DevTokenUnavailable("This server does not mint demo tokens (POST /dev/token is enabled only by `npm start`, with DEV_TOKENS=1).");
  }
  const body = (await response.json().catch(() => null)) as { token?: string; error?: { message?: string } } | null;
  if (!response.ok || typeof body?.token !== "string") {
    throw new Error(body?.error?.message ?? `POST /dev/token answered ${response.status}`);
  }
  return body.token;
}
