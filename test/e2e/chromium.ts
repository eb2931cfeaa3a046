/**
 * Debian's Chromium for the browser tests, driven by playwright-core (never a
 * downloaded browser). Every test file that launches a browser does it here:
 *
 *  - `describeInChromium` is `describe`, skipped when the browser is missing
 *    and CI is unset, so a fresh machine's `npm test` is green; the e2e
 *    global setup prints the one line that says so and what to install;
 *  - with CI set, a missing browser fails the browser tests (`launchChromium`
 *    throws the same line), as CI must not pass without them.
 *
 * `CHROMIUM_PATH` overrides /usr/bin/chromium (for another install, or to
 * check the missing-browser behaviour without removing it).
 */
import { existsSync } from "node:fs";
import { chromium, type Browser } from "playwright-core";
import { describe } from "vitest";

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--headless"];

export const chromiumInstalled = existsSync(CHROMIUM_PATH);
const inCI = Boolean(process.env.CI) && process.env.CI !== "false";

/** True when the browser tests will be skipped rather than run (or fail). */
export const skipBrowserTests = !chromiumInstalled && !inCI;

export const CHROMIUM_MISSING = `${CHROMIUM_PATH} is missing, so the browser tests ${inCI ? "fail (CI is set)" : "are skipped"}: install Chromium with \`apt-get install -y chromium\` (.ci/run does this)`;

/** `describe` for tests that need Chromium. */
export const describeInChromium = describe.skipIf(skipBrowserTests);

/**
 * A fresh browser (each launch has its own temporary profile, removed on close). A missing browser
 * throws at once, not in a rejected promise, so a caller that starts a server beside it can launch first.
 */
export function launchChromium(): Promise<Browser> {
  if (!chromiumInstalled) throw new Error(CHROMIUM_MISSING);
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_ARGS });
}
