// Measures how fluid the dashboard stays: signs in, waits for the cars, then counts animation
// frames and long tasks (> 50 ms) over 10 s in headless Chromium. Prints one JSON line.
// node fluidity.mjs URL USER PASSWORD
import { chromium } from "playwright-core";

const [url, user, password] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });
const page = await (await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1400, height: 1000 } })).newPage();
await page.goto(url);
await page.fill("input[name=username]", user);
await page.fill("input[name=password]", password);
await page.click("#login button[type=submit]");
await page.waitForSelector("#connection.online", { timeout: 30_000 });
await page.waitForTimeout(15_000);
const result = await page.evaluate(
  () =>
    new Promise((resolve) => {
      const long = [];
      new PerformanceObserver((list) => long.push(...list.getEntries().map((e) => e.duration))).observe({ type: "longtask" });
      let frames = 0;
      let worst = 0;
      let last = performance.now();
      const start = last;
      const tick = (now) => {
        frames++;
        worst = Math.max(worst, now - last);
        last = now;
        if (now - start < 10_000) requestAnimationFrame(tick);
        else resolve({ cars: document.querySelectorAll("#map circle.car").length, framesPerSecond: frames / 10, worstFrameMs: Math.round(worst), longTasks: long.length, longestTaskMs: Math.round(Math.max(0, ...long)) });
      };
      requestAnimationFrame(tick);
    }),
);
console.log(JSON.stringify(result));
await browser.close();
