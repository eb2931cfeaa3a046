/**
 * Whether the service lets this page's origin in. A browser hides why a
 * cross-origin request failed, so ask twice: a CORS request to `/health`
 * that fails while an opaque (`no-cors`) one to the same URL gets through
 * means the server is up and refuses this origin (it is not in the
 * service's CORS_ORIGINS); both failing means the server is unreachable,
 * which the client library's reconnects handle.
 */
export type OriginVerdict = "allowed" | "refused" | "unreachable";

export async function checkOrigin(server: string): Promise<OriginVerdict> {
  if (new URL(server).origin === location.origin) return "allowed";
  const url = `${server}/health`;
  try {
    await fetch(url, { mode: "cors", credentials: "omit", cache: "no-store" });
    return "allowed";
  } catch {
    // refused by CORS, or no answer at all: tell them apart
  }
  try {
    await fetch(url, { mode: "no-cors", credentials: "omit", cache: "no-store" });
    return "refused";
  } catch {
    return "unreachable";
  }
}
