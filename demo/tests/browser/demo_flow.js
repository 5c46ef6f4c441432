// Drives the demo page in headless Chromium as a person would, for demo/tests/demo_browser.rs:
// session mode with the default verification (password + code, checked by the identity
// provider against the enrolled factor; MFA_NOT_ENROLLED before enrolment, a wrong password
// refused), then claims mode (401 naming acr_values/max_age, a step-up sign-in at the
// identity provider, the retry with the new token allowed).
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

    // 1b. a step-up before any second factor is enrolled: the password alone is refused
    await page.click("#call-transfer");
    await waitText("#api-status", "POST /transfer: 401");
    await waitText("#initiate-result", "MAYBE_SOFTWARE_TOKEN_STEP_UP");
    expect((await text("#initiate-result")).includes('"requires":["password","challenge-response"]'),
      "/initiate-auth names what the default verification needs");
    await page.fill("#stepup-password", password);
    await page.fill("#otp", "123456");
    await page.click("#submit-otp");
    const notEnrolled = await waitText("#challenge-status", "403");
    expect(notEnrolled.includes("MFA_NOT_ENROLLED"), "403 MFA_NOT_ENROLLED shown: " + notEnrolled);
    expect(await page.isVisible("#mfa-not-enrolled"), "the MFA_NOT_ENROLLED notice is shown");
    await shot("mfa-not-enrolled");

    // 2. software token: scan the QR code (read the secret), verify a code
    await page.click("#associate");
    await page.waitForSelector("#qr[src^='data:image/svg+xml;base64,']");
    // the SVG really renders (a broken picture has no natural size)
    await page.waitForFunction(() => {
      const img = document.getElementById("qr");
      return img.complete && img.naturalWidth > 0;
    }, null, { timeout: 5000 });
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

    // 5. /transfer: 401 with the RFC 9470 challenge, then /initiate-auth asks for password and code
    await page.click("#call-transfer");
    await waitText("#api-status", "POST /transfer: 401");
    const www = await text("#api-www");
    expect(www.includes('error="insufficient_user_authentication"'), "WWW-Authenticate challenge shown: " + www);
    await waitText("#initiate-result", '"code":"SOFTWARE_TOKEN_STEP_UP"');
    expect((await text("#initiate-result")).includes('"verification":"COGNITO_MFA"'), "the default verification");
    expect(!(await page.isVisible("#mfa-not-enrolled")), "no MFA_NOT_ENROLLED notice now");
    await shot("transfer-challenge");

    // 6. a wrong password is refused, even with the right code
    await page.fill("#stepup-password", password + "-wrong");
    await page.fill("#otp", totp(secret, Date.now() / 1000));
    await page.click("#submit-otp");
    const refused = await waitText("#challenge-status", "401");
    expect(refused.includes("Challenge Failed"), "wrong password refused: " + refused);
    await shot("wrong-password-refused");

    // 7. the right password and code are accepted
    await page.fill("#stepup-password", password);
    await page.fill("#otp", totp(secret, Date.now() / 1000));
    await page.click("#submit-otp");
    const accepted = await waitText("#challenge-status", "200");
    expect(accepted.includes("Challenge Successful"), "right password and code accepted: " + accepted);
    await shot("right-code-accepted");

    // 8. /transfer again: allowed
    await page.click("#call-transfer");
    await waitText("#api-status", "POST /transfer: 200");
    const body = await text("#api-body");
    expect(body.includes("Transfer of 100.00 EUR completed"), "transfer done");
    expect(body.includes('"x-stepup-status": "complete"'), "step-up complete header reached the API");
    await shot("transfer-allowed");

    // 9. claims mode: the token itself must prove a recent MFA sign-in
    await page.click("#call-approve");
    await waitText("#api-status", "POST /payments/1234/approve: 401");
    const claimsWww = await text("#api-www");
    expect(claimsWww.includes('acr_values="urn:cognito:loa:3 urn:cognito:loa:4"'), "acr_values in the challenge: " + claimsWww);
    expect(claimsWww.includes('max_age="300"'), "max_age in the challenge: " + claimsWww);
    expect(await page.isVisible("#claims"), "the claims-mode box is shown");
    expect((await text("#claims-current")).includes("acr urn:cognito:loa:1"), "the password-only token is level 1");
    await shot("approve-claims-challenge");

    // 10. sign in again at the identity provider (password + TOTP) and retry with the new token
    await page.fill("#claims-password", password);
    await page.fill("#claims-otp", totp(secret, Date.now() / 1000));
    await page.click("#claims-sign-in");
    await waitText("#api-status", "POST /payments/1234/approve: 200");
    const newToken = await text("#claims-token");
    expect(newToken.includes('"acr": "urn:cognito:loa:4"'), "level 4 after password + TOTP: " + newToken);
    expect(newToken.includes('"otp"') && newToken.includes('"mfa"'), "amr names otp and mfa: " + newToken);
    const approved = await text("#api-body");
    expect(approved.includes("Payment 1234 approved"), "payment approved");
    expect(approved.includes('"x-stepup-status": "complete"'), "claims mode satisfied: " + approved);
    await shot("approve-allowed");

    console.log(JSON.stringify({ browser: browser.version(), steps }, null, 1));
  } finally {
    await browser.close();
  }
})().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  console.log(JSON.stringify({ failedAfter: steps }, null, 1));
  process.exit(1);
});
