/**
 * SPEC §7 notification payloads: default wording per event, notify's `push`
 * wording, and the limits (title ≤ 100 and body ≤ 200 characters, JSON ≤
 * 1000 bytes, ellipsis on every cut, surrogate pairs never split).
 */
import { describe, expect, it } from "vitest";
import type { Envelope } from "../../protocol/envelope";
import { encodeNotification, notificationFor, truncate, urgencyFor } from "../../server/push/payload";

const envelope = (fields: Partial<Envelope>): Envelope => ({
  room: "support-7",
  seq: 12,
  id: "00000000-0000-4000-8000-000000000000",
  event: "message",
  data: {},
  ts: "2026-11-21T10:00:00.000Z",
  ...fields,
});

const bytes = (text: string) => new TextEncoder().encode(text).byteLength;

describe("push payload wording", () => {
  it("a chat message: '<sender> in <room>' and its text; in an inbox just the sender", () => {
    expect(notificationFor(envelope({ from: { id: "ann", name: "Ann" }, data: { text: "hello" } }))).toEqual({
      title: "Ann in support-7", body: "hello", url: "/?room=support-7", room: "support-7", seq: 12, event: "message",
    });
    expect(notificationFor(envelope({ room: "user:bo", from: { id: "ann", name: "" }, data: { text: "psst" } }))).toMatchObject({ title: "ann", url: "/?room=user%3Abo" });
  });

  it("a server event: data.title / data.text (or body, message), else the event name; push wording wins", () => {
    const event = envelope({ event: "ticket_assigned", data: { ticket: 4 } });
    expect(notificationFor(event)).toMatchObject({ title: "ticket_assigned", body: "", event: "ticket_assigned" });
    expect(notificationFor({ ...event, data: { title: "Ticket 4", body: "Yours now" } })).toMatchObject({ title: "Ticket 4", body: "Yours now" });
    expect(notificationFor({ ...event, from: { id: "desk", name: "Helpdesk" }, data: { message: "m" } })).toMatchObject({ title: "Helpdesk", body: "m" });
    expect(notificationFor({ ...event, data: { title: "Ticket 4" } }, { title: "Custom", body: "Words", url: "https://app.example/t/4" })).toMatchObject({
      title: "Custom", body: "Words", url: "https://app.example/t/4",
    });
    expect(urgencyFor(undefined)).toBe("normal");
    expect(urgencyFor({ urgency: "high" })).toBe("high");
  });
});

describe("push payload limits", () => {
  it("cuts title and body to 100 and 200 characters with an ellipsis; short text is untouched", () => {
    const json = JSON.parse(encodeNotification(notificationFor(envelope({ from: { id: "a", name: "A" }, data: { text: "x".repeat(500) } }), { title: "t".repeat(101) })));
    expect(json.title).toBe(`${"t".repeat(99)}…`);
    expect(json.body).toBe(`${"x".repeat(199)}…`);
    expect(JSON.parse(encodeNotification(notificationFor(envelope({ from: { id: "a", name: "A" }, data: { text: "x".repeat(200) } })))).body).toBe("x".repeat(200));
  });

  it("never splits a surrogate pair", () => {
    const cut = truncate("😀".repeat(150), 100);
    expect(cut.length).toBeLessThanOrEqual(100);
    expect(cut).toBe(`${"😀".repeat(49)}…`);
    expect(() => encodeURIComponent(cut)).not.toThrow();
  });

  it("keeps the whole JSON within 1000 bytes, cutting the body first, then the title; a url too long to fit is replaced", () => {
    const wide = JSON.parse(encodeNotification(notificationFor(envelope({ event: "invoice_overdue_reminder" }), { title: "€".repeat(100), body: "€".repeat(200) })));
    expect(bytes(JSON.stringify(wide))).toBeLessThanOrEqual(1000);
    expect(wide.title).toBe("€".repeat(100));
    expect(wide.body).toMatch(/^€+…$/);
    expect(wide.body.length).toBeLessThan(200);

    const escaped = JSON.parse(encodeNotification(notificationFor(envelope({ event: "x" }), { title: "\u0001".repeat(100), body: "\u0001".repeat(200) })));
    expect(bytes(JSON.stringify(escaped))).toBeLessThanOrEqual(1000);
    expect(escaped.title).toBe("\u0001".repeat(100));
    expect(escaped.body).toMatch(/^\u0001+…$/);

    // A room id that percent-encodes to 492 characters leaves too little even for the title.
    const colons = ":".repeat(164);
    const tight = JSON.parse(encodeNotification(notificationFor(envelope({ room: colons, event: "e".repeat(64) }), { title: "\u0001".repeat(100), body: "b".repeat(200) })));
    expect(bytes(JSON.stringify(tight))).toBeLessThanOrEqual(1000);
    expect(tight.body).toBe("…");
    expect(tight.title).toMatch(/^\u0001+…$/);
    expect(tight.url).toBe(`/?room=${"%3A".repeat(164)}`);

    const longUrl = `https://app.example/${"p".repeat(1500)}`;
    const room = "r".repeat(164);
    const fallback = JSON.parse(encodeNotification(notificationFor(envelope({ room, event: "e".repeat(64) }), { title: "€".repeat(100), body: "b", url: longUrl })));
    expect(bytes(JSON.stringify(fallback))).toBeLessThanOrEqual(1000);
    expect(fallback.url).toBe(`/?room=${room}`);
    expect(fallback).toMatchObject({ room, title: "€".repeat(100), body: "b" });
  });
});
