// The dashboard in headless Chromium, as a person uses it: a wrong password is refused with a
// visible message; sign in; at least three cars appear and move; the edge core shows online with
// car-0003 behind it, and its predicted range; change the desired lights of car-0003 (behind the core: the change goes
// cloud → core → car and the report comes back the same way) and see the car report it and the
// delta vanish; send it a command and see its result; an expired sign-in is shown; log out.
// Screenshots go to the directory given.
//
// node dashboard.mjs URL USER PASSWORD SCREENSHOT_DIR
// Exits 0 when every step passed; prints each step.

import { chromium } from "playwright-core";

const [url, user, password, shots] = process.argv.slice(2);
const executablePath = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => {
  try {
    return process.getBuiltinModule("fs").statSync(p).isFile();
  } catch {
    return false;
  }
});
if (!executablePath) {
  console.error("no chromium: apt-get install chromium");
  process.exit(2);
}

const browser = await chromium.launch({ executablePath, args: ["--no-sandbox"] });
// The broker's certificate comes from its development CA.
const context = await browser.newContext({
  ignoreHTTPSErrors: true,
  viewport: { width: 1400, height: 1000 },
});
const page = await context.newPage();
const problems = [];
page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
const step = (name) => console.log(`step: ${name}`);
const timeout = 20_000;

try {
  await page.clock.install();
  await page.goto(url);

  step("a wrong password is refused, visibly");
  await page.fill("input[name=username]", user);
  await page.fill("input[name=password]", "not the password");
  await page.click("#login button[type=submit]");
  await page.waitForSelector("#error:not([hidden])", { timeout });
  const refusal = await page.textContent("#error");
  if (!/incorrect username or password/i.test(refusal)) throw new Error(`refusal said: ${refusal}`);

  step("sign in");
  await page.fill("input[name=password]", password);
  await page.click("#login button[type=submit]");
  await page.waitForSelector("#connection.online", { timeout });

  step("three cars appear and move");
  await page.waitForFunction(() => document.querySelectorAll("#map circle.car[cx]").length >= 3, null, { timeout });
  const positions = () =>
    page.$$eval("#map circle.car[cx]", (dots) => dots.map((d) => `${d.dataset.thing}@${d.getAttribute("cx")},${d.getAttribute("cy")}`).sort());
  const before = await positions();
  await page.clock.runFor(1500);
  await page.waitForFunction(
    (earlier) => {
      const now = [...document.querySelectorAll("#map circle.car[cx]")].map((d) => `${d.dataset.thing}@${d.getAttribute("cx")},${d.getAttribute("cy")}`).sort();
      return now.some((p, i) => p !== earlier[i]);
    },
    before,
    { timeout },
  );
  await page.screenshot({ path: `${shots}/dashboard-cars.png` });

  step("the edge core is online with car-0003 behind it");
  await page.waitForFunction(
    () => {
      const core = document.querySelector("#cores li[data-core=edge-core-1]");
      const via = document.querySelector("#cars tbody tr[data-thing=car-0003]")?.cells[2]?.textContent;
      return core && /online · 1 car behind it/.test(core.textContent) && via === "edge-core-1";
    },
    null,
    { timeout },
  );
  const direct = await page.$eval("#cars tbody tr[data-thing=car-0001]", (row) => row.cells[2].textContent);
  if (direct !== "cloud") throw new Error(`car-0001 is via ${direct}, not the cloud`);

  step("the core's prediction of car-0003's range is shown");
  await page.waitForFunction(
    () => Number(document.querySelector("#cars tbody tr[data-thing=car-0003]")?.cells[5]?.textContent) > 0,
    null,
    { timeout },
  );

  step("change a car's desired lights (behind the core): the car reports it, the delta vanishes");
  await page.click("#cars tbody tr[data-thing=car-0003]");
  await page.waitForFunction(() => document.querySelector("#shadow").textContent.includes('"reported"'), null, { timeout });
  const current = await page.$eval("#desired select[name=lights]", (s) => s.value);
  const wanted = current === "on" ? "off" : "on";
  await page.selectOption("#desired select[name=lights]", wanted);
  await page.click("#desired button[type=submit]");
  await page.waitForFunction(
    (lights) => {
      const text = document.querySelector("#shadow").textContent;
      try {
        const doc = JSON.parse(text);
        return doc.reported.lights === lights && doc.desired.lights === lights && !doc.delta;
      } catch {
        return false;
      }
    },
    wanted,
    { timeout },
  );

  step("send a command and see its result");
  await page.click(".commands button[data-command=honk]");
  await page.waitForFunction(() => document.querySelector("#results").textContent.includes("honk: done"), null, { timeout });
  await page.screenshot({ path: `${shots}/dashboard-car.png`, fullPage: true });

  step("an expired sign-in is shown");
  await page.clock.fastForward(2 * 3600 * 1000);
  await page.waitForFunction(() => /expired/i.test(document.querySelector("#error").textContent), null, { timeout });
  await page.screenshot({ path: `${shots}/dashboard-expired.png` });

  step("log out");
  await page.click("#logout");
  await page.waitForSelector("#login:not([hidden])", { timeout });
  if (problems.length) throw new Error(problems.join("; "));
  console.log("ok");
} catch (error) {
  await page.screenshot({ path: `${shots}/dashboard-failure.png`, fullPage: true }).catch(() => {});
  console.error(`FAILED: ${error.message}`);
  for (const p of problems) console.error(p);
  process.exitCode = 1;
} finally {
  await browser.close();
}
