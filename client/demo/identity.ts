/**
 * Who this tab is. Each tab keeps its own guest id and display name in
 * sessionStorage, so two tabs of one browser are two people (which is the
 * point of the demo); the name survives a reload.
 */
export interface Identity {
  id: string;
  name: string;
}

const KEY = "rooms-demo:identity";

export function loadIdentity(): Identity {
  try {
    const saved = JSON.parse(sessionStorage.getItem(KEY) ?? "null") as Identity | null;
    if (saved && typeof saved.id === "string" && typeof saved.name === "string") return saved;
  } catch {
    // storage unavailable or garbled: make a new guest
  }
  const digits = String(1000 + Math.floor(Math.random() * 9000));
  const identity = { id: `guest-${digits}-${Math.random().toString(36).slice(2, 8)}`, name: `Guest ${digits}` };
  saveIdentity(identity);
  return identity;
}

export function saveIdentity(identity: Identity): void {
  try {
    sessionStorage.setItem(KEY, JSON.stringify(identity));
  } catch {
    // private mode: the identity lasts as long as the page
  }
}
