// Debian's Chromium, headless, driven by playwright-core (which downloads no browser of its own).
import fs from 'fs';
import { Browser, chromium } from 'playwright-core';

/** CHROMIUM, else Debian's `chromium` (panels.sh installs it when it is missing). */
export function chromiumPath(): string {
  const candidates = [process.env.CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'];
  const found = candidates.find((p): p is string => Boolean(p) && fs.existsSync(p as string));
  if (!found) {
    throw new Error("no Chromium: install Debian's chromium package (panels.sh does as root) or set CHROMIUM");
  }
  return found;
}

/** A fresh headless browser (playwright gives it a new temporary profile) that talks to nothing but
 * the pages the test loads. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    timeout: 60_000,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--hide-scrollbars',
      '--font-render-hinting=none',
    ],
  });
}
