/**
 * "Enable notifications" on the demo page (Web Push, docs/push.md): asks for
 * permission, registers the service worker `/sw.js`, subscribes with the
 * server's VAPID key (`GET /push/vapid-public-key`) and posts the
 * subscription (`POST /push/subscriptions`) for the demo user. The service
 * worker shows each push and opens its room on click. Clicking again turns
 * it off (unsubscribe, `DELETE /push/subscriptions`).
 *
 * A subscription belongs to the browser profile, not to the tab: posting
 * it from another tab (another guest) moves it to that guest.
 */

type State = "off" | "on" | "busy" | "blocked";

const LABELS: Record<State, string> = {
  off: "Enable notifications",
  on: "Notifications on",
  busy: "Working…",
  blocked: "Notifications blocked",
};

function base64UrlToBytes(text: string): Uint8Array<ArrayBuffer> {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(text.length / 4) * 4, "=");
  const binary = atob(base64);
  const bytes = new Uint8Array(new ArrayBuffer(binary.length));
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** A short label for the device list, e.g. "Chrome on Linux". */
function deviceName(): string {
  const ua = navigator.userAgent;
  const browser = /Edg\//.test(ua) ? "Edge" : /Firefox\//.test(ua) ? "Firefox" : /Chrome\//.test(ua) ? "Chrome" : /Safari\//.test(ua) ? "Safari" : "Browser";
  const os = /Android/.test(ua) ? "Android" : /iPhone|iPad/.test(ua) ? "iOS" : /Mac OS X/.test(ua) ? "macOS" : /Windows/.test(ua) ? "Windows" : /Linux/.test(ua) ? "Linux" : "";
  return os ? `${browser} on ${os}` : browser;
}

export class PushNotifications {
  #state: State = "off";

  constructor(
    private readonly row: HTMLElement,
    private readonly button: HTMLButtonElement,
    private readonly note: HTMLElement,
    private readonly token: () => Promise<string>,
  ) {}

  static supported(): boolean {
    return "serviceWorker" in navigator && "PushManager" in window && "Notification" in window && window.isSecureContext;
  }

  /** Shows the button; with permission already granted, re-posts the existing subscription (it may be new to this server). */
  async start(): Promise<void> {
    if (!PushNotifications.supported()) return;
    this.row.hidden = false;
    this.button.addEventListener("click", () => void (this.#state === "on" ? this.disable() : this.enable()));
    if (Notification.permission === "denied") return this.#show("blocked", "Allow notifications for this site in the browser's settings.");
    this.#show("off");
    if (Notification.permission !== "granted") return;
    const registration = await navigator.serviceWorker.getRegistration("/");
    const subscription = await registration?.pushManager.getSubscription();
    if (!subscription) return;
    try {
      await this.#post(subscription);
      this.#show("on", "You will be notified while away.");
    } catch (error) {
      this.#show("off", (error as Error).message);
    }
  }

  async enable(): Promise<void> {
    this.#show("busy");
    try {
      const permission = await Notification.requestPermission();
      if (permission !== "granted") {
        this.#show(permission === "denied" ? "blocked" : "off", "Notifications were not allowed.");
        return;
      }
      const registration = await navigator.serviceWorker.register("/sw.js", { scope: "/" });
      await navigator.serviceWorker.ready;
      const response = await fetch("/push/vapid-public-key");
      if (!response.ok) throw new Error(`the server has no push key (${response.status})`);
      const { publicKey } = (await response.json()) as { publicKey: string };
      const applicationServerKey = base64UrlToBytes(publicKey);
      let subscription = await registration.pushManager.getSubscription();
      if (subscription && !sameKey(subscription.options.applicationServerKey, applicationServerKey)) {
        await subscription.unsubscribe(); // made for another server key: the push service would refuse our pushes
        subscription = null;
      }
      subscription ??= await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey });
      await this.#post(subscription);
      this.#show("on", "You will be notified while away.");
    } catch (error) {
      this.#show("off", `Could not enable notifications: ${(error as Error).message}`);
    }
  }

  async disable(): Promise<void> {
    this.#show("busy");
    try {
      const registration = await navigator.serviceWorker.getRegistration("/");
      const subscription = await registration?.pushManager.getSubscription();
      if (subscription) {
        const response = await fetch("/push/subscriptions", {
          method: "DELETE",
          headers: { "content-type": "application/json", authorization: `Bearer ${await this.token()}` },
          body: JSON.stringify({ endpoint: subscription.endpoint }),
        });
        if (!response.ok && response.status !== 404) throw new Error(`DELETE /push/subscriptions answered ${response.status}`);
        await subscription.unsubscribe();
      }
      this.#show("off", "Notifications are off.");
    } catch (error) {
      this.#show("on", `Could not turn notifications off: ${(error as Error).message}`);
    }
  }

  async #post(subscription: PushSubscription): Promise<void> {
    const response = await fetch("/push/subscriptions", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${await this.token()}` },
      body: JSON.stringify({ subscription: subscription.toJSON(), deviceType: "browser", deviceName: deviceName() }),
    });
    if (response.status !== 201) {
      const body = (await response.json().catch(() => null)) as { error?: { message?: string } } | null;
      throw new Error(body?.error?.message ?? `POST /push/subscriptions answered ${response.status}`);
    }
  }

  #show(state: State, note = ""): void {
    this.#state = state;
    this.button.dataset.state = state;
    this.button.textContent = LABELS[state];
    this.button.disabled = state === "busy" || state === "blocked";
    this.button.setAttribute("aria-pressed", String(state === "on"));
    this.note.textContent = note;
  }
}

function sameKey(a: ArrayBuffer | null, b: Uint8Array): boolean {
  if (!a) return false;
  const bytes = new Uint8Array(a);
  return bytes.length === b.length && bytes.every((byte, i) => byte === b[i]);
}
