/*
 * The demo page's service worker: shows Web Push notifications and opens
 * their room on click. Each push is the JSON the service sends (docs/push.md):
 * {"title","body","url","room","seq","event"}. Notifications of one room
 * replace each other (same tag), so a busy room does not pile them up.
 */

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("push", (event) => {
  let push = {};
  try {
    push = event.data ? event.data.json() : {};
  } catch {
    push = { body: event.data ? event.data.text() : "" };
  }
  const title = typeof push.title === "string" && push.title ? push.title : "New message";
  const options = {
    body: typeof push.body === "string" ? push.body : "",
    data: { url: typeof push.url === "string" ? push.url : "/", room: push.room, seq: push.seq, event: push.event },
  };
  if (typeof push.room === "string") {
    options.tag = `room:${push.room}`;
    options.renotify = true;
  }
  event.waitUntil(self.registration.showNotification(title, options));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  let target;
  try {
    target = new URL(event.notification.data?.url || "/", self.location.origin);
  } catch {
    target = new URL("/", self.location.origin);
  }
  if (target.protocol !== "https:" && target.protocol !== "http:") return;
  event.waitUntil(openOrFocus(target.href));
});

/** Focus a tab already on that page; else steer a tab of this site there; else open one. */
async function openOrFocus(href) {
  const tabs = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  const exact = tabs.find((tab) => tab.url === href);
  if (exact) return exact.focus();
  const sameSite = new URL(href).origin === self.location.origin && tabs.find((tab) => "navigate" in tab);
  if (sameSite) {
    const navigated = await sameSite.navigate(href).catch(() => null);
    if (navigated) return navigated.focus();
  }
  return self.clients.openWindow(href);
}
