// Drives the demo page in headless Chromium as a person would, for sidecar/tests/demo_browser.rs.
//
//   NODE_PATH=<playwright-core node_modules> DEMO_URL=... DEMO_USER=... DEMO_PASSWORD=... \
//   ARTIFACT_DIR=test-artifacts/demo [CHROMIUM_PATH=/usr/bin/chromium] node demo_flow.js
//
// The TOTP codes are computed here from the secret the page shows (RFC 6238, HMAC-SHA-1,
// 6 digits, 30 s), like an authenticator app would. Every step asserts what the page shows
// and keeps a full-page screenshot ARTIFACT_DIR/NN-step.png. Prints a JSON report on stdout.
"use strict";
const { chromium } = require("playwright-core");
const crypto = require("crypto");
const path = require("path");

const url = process.env.DEMO_URL;
const user = process.env.DEMO_USER;
const password = process.env.DEMO_PASSWORD;
const outDir = process.env.ARTIFACT_DIR;
if (!url || !user || !password || !outDir) {
  console.error("DEMO_URL, DEMO_USER, DEMO_PASSWORD and ARTIFACT_DIR are required");
  process.exit(2);
}
// The whole flow takes a few seconds; never hang a test run.
setTimeout(() => { console.error("demo_flow.js: overall timeout"); process.exit(3); }, 120000).unref();

function base32Decode(s) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0, value = 0;
  const out = [];
  for (const ch of s.replace(/=+$/, "").toUpperCase()) {
    const idx = alphabet.indexOf(ch);
    if (idx < 0) throw new Error("not base32: " + ch);
    value = (value << 5) | idx; bits += 5;
    if (bits >= 8) { out.push((value >>> (bits - 8)) & 0xff); bits -= 8; }
  }
  return Buffer.from(out);
}

function totp(secret, unixSeconds, digits = 6, step = 30) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(unixSeconds / step)));
  const mac = crypto.createHmac("sha1", secret).update(counter).digest();
  const off = mac[mac.length - 1] & 0x0f;
  const bin = (mac.readUInt32BE(off) & 0x7fffffff) % 10 ** digits;
  return String(bin).padStart(digits, "0");
}

const steps = [];
let page;

async function shot(name) {
  const file = path.join(outDir, `${String(steps.length + 1).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  steps.push({ step: name, screenshot: file });
}

async function text(sel) { return (await page.textContent(sel)) || ""; }

async function waitText(sel, needle) {
  await page.waitForFunction(
    ([s, n]) => { const e = document.querySelector(s); return !!e && e.textContent.includes(n); },
    [sel, needle], { timeout: 10000 });
  return text(sel);
}

function expect(cond, what) { if (!cond) throw new Error("assertion failed: " + what); }

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage"],
  });
  try {
    page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    page.on("pageerror", (e) => { console.error("page error:", e.message); });

    await page.goto(url);
    expect((await text("#dev-banner")).includes("DEVELOPMENT DEMO"), "development banner shown");
    await shot("page-loaded");

    // 1. sign in
    await page.fill("#username", user);
    await page.fill("#password", password);
    await page.click("#sign-in");
    await waitText("#auth-status", `Signed in as ${user}`);
    expect((await text("#token-claims")).includes('"token_use": "access"'), "access-token claims shown");
    await shot("signed-in");

    // 2. software token: scan the QR code (read the secret), verify a code
    await page.click("#associate");
    await page.waitForSelector("#qr[src^='data:image/png;base64,']");
    const secretText = (await text("#totp-secret")).trim();
    expect(/^[A-Z2-7]{16,}$/.test(secretText), "a base32 secret is shown: " + secretText);
    expect((await text("#otpauth-uri")).startsWith("otpauth://totp/"), "otpauth URI shown");
    const secret = base32Decode(secretText);
    await shot("qr-code");
    await page.fill("#setup-code", totp(secret, Date.now() / 1000));
    await page.click("#verify-token");
    await waitText("#setup-status", "Software token verified");
    await shot("token-verified");

    // 3. preferred MFA
    await page.click("#prefer-totp");
    await waitText("#mfa-status", "Preferred MFA: SOFTWARE_TOKEN_MFA");
    await shot("preferred-mfa");

    // 4. /info is allowed
    await page.click("#call-info");
    await waitText("#api-status", "GET /info: 200");
    expect((await text("#api-body")).includes('"x-stepup-status": "not_required"'), "/info allowed without step-up");
    await shot("info-allowed");

    // 5. /transfer: 401 with the RFC 9470 challenge, then /initiate-auth
    await page.click("#call-transfer");
    await waitText("#api-status", "POST /transfer: 401");
    const www = await text("#api-www");
    expect(www.includes('error="insufficient_user_authentication"'), "WWW-Authenticate challenge shown: " + www);
    await waitText("#initiate-result", "SOFTWARE_TOKEN_STEP_UP");
    await shot("transfer-challenge");

    // 6. a wrong code is refused
    const now = Date.now() / 1000;
    const valid = new Set([-1, 0, 1].map((k) => totp(secret, now + 30 * k)));
    let wrong = "000000";
    while (valid.has(wrong)) wrong = String((Number(wrong) + 111111) % 1000000).padStart(6, "0");
    await page.fill("#otp", wrong);
    await page.click("#submit-otp");
    const refused = await waitText("#challenge-status", "401");
    expect(refused.includes("Challenge Failed"), "wrong code refused: " + refused);
    await shot("wrong-code-refused");

    // 7. the right code is accepted
    await page.fill("#otp", totp(secret, Date.now() / 1000));
    await page.click("#submit-otp");
    const accepted = await waitText("#challenge-status", "200");
    expect(accepted.includes("Challenge Successful"), "right code accepted: " + accepted);
    await shot("right-code-accepted");

    // 8. /transfer again: allowed
    await page.click("#call-transfer");
    await waitText("#api-status", "POST /transfer: 200");
    const body = await text("#api-body");
    expect(body.includes("Transfer of 100.00 EUR completed"), "transfer done");
    expect(body.includes('"x-stepup-status": "complete"'), "step-up complete header reached the API");
    await shot("transfer-allowed");

    console.log(JSON.stringify({ browser: browser.version(), steps }, null, 1));
  } finally {
    await browser.close();
  }
})().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  console.log(JSON.stringify({ failedAfter: steps }, null, 1));
  process.exit(1);
});
