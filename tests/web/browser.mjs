// Shared launcher for the widget's browser test and benchmark: Debian's chromium driven by
// playwright-core, headless, with a fresh throw-away profile and nothing that reaches the network.
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const CHROMIUM = process.env.ONE4D_CHROMIUM || "/usr/bin/chromium";

export const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  // Without a GPU, WebGL runs on SwiftShader (software); recent Chromium only allows that when asked.
  "--enable-unsafe-swiftshader",
];

/**
 * Launches chromium with a fresh user-data-dir and returns {context, page, messages, close}.
 * `messages` collects console messages and uncaught page errors as {type, text}.
 */
export async function launch({ width = 640, height = 480 } = {}) {
  const profile = mkdtempSync(join(tmpdir(), "one4d-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: { width, height },
    timeout: 60_000,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const messages = [];
  page.on("console", (msg) => messages.push({ type: msg.type(), text: msg.text() }));
  page.on("pageerror", (err) => messages.push({ type: "pageerror", text: String(err && err.stack || err) }));
  page.on("requestfailed", (req) =>
    messages.push({ type: "requestfailed", text: `${req.url()} ${req.failure()?.errorText ?? ""}` }));
  const close = async () => {
    await context.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
  };
  return { context, page, messages, close };
}
