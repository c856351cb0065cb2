// Opens a page in Debian's chromium through playwright-core and prints, as one JSON object, what a
// test needs to check it: every request the page made, script errors, the numbers in its DOM, and
// what sorting and filtering its table did. Used by tests/du_page.rs.
//
// node page_probe.js PLAYWRIGHT_CORE_DIR PAGE.html SCREENSHOT.png FILTER_TEXT
"use strict";
const [, , playwrightDir, pagePath, screenshot, filterText] = process.argv;
const { chromium } = require(playwrightDir);
const { pathToFileURL } = require("url");

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const out = { requests: [], errors: [] };
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    page.on("request", (r) => out.requests.push(r.url()));
    page.on("websocket", (w) => out.requests.push(w.url()));
    page.on("pageerror", (e) => out.errors.push(String(e)));
    page.on("console", (m) => { if (m.type() === "error") { out.errors.push(m.text()); } });
    const url = pathToFileURL(pagePath).href;
    out.url = url;
    await page.goto(url, { waitUntil: "load" });
    await page.waitForTimeout(300);
    await page.screenshot({ path: screenshot, fullPage: false });

    out.dom = await page.evaluate(() => {
      const num = (el, attr) => (el ? Number(el.getAttribute(attr)) : null);
      const q = (s) => document.querySelector(s);
      const rows = Array.from(document.querySelectorAll("#repos tbody tr")).map((tr) => {
        const v = (cls) => num(tr.querySelector("td." + cls), "data-value");
        const growth = tr.querySelector("td.growth");
        return {
          name: tr.getAttribute("data-repo"),
          tags: v("tags"), manifests: v("manifests"),
          bytes: num(tr.querySelector("td.bytes"), "data-bytes"),
          bytes_text: tr.querySelector("td.bytes").textContent,
          exclusive_bytes: num(tr.querySelector("td.exclusive"), "data-bytes"),
          shared_bytes: num(tr.querySelector("td.shared"), "data-bytes"),
          growth: growth ? Number(growth.getAttribute("data-value")) : null,
        };
      });
      const tiles = Array.from(document.querySelectorAll("#treemap .tile")).map((g) => {
        const r = g.querySelector("rect.shared"), e = g.querySelector("rect.exclusive");
        const area = (x) => Number(x.getAttribute("width")) * Number(x.getAttribute("height"));
        return {
          repo: g.getAttribute("data-repo"), bytes: num(g, "data-bytes"),
          exclusive_bytes: num(g, "data-exclusive-bytes"), area: area(r), exclusive_area: area(e),
        };
      });
      const details = Array.from(document.querySelectorAll("details.repo")).map((d) => ({
        repo: d.getAttribute("data-repo"),
        tags: Array.from(d.querySelectorAll("tr.tag")).map((t) => ({
          name: t.getAttribute("data-tag"), bytes: num(t, "data-bytes"),
          digest: t.querySelector("code").getAttribute("title"),
        })),
        blobs: Array.from(d.querySelectorAll("tr.blob")).map((b) => ({
          digest: b.getAttribute("data-digest"), bytes: num(b, "data-bytes"),
          shared_by: num(b, "data-shared-by"), shared_with_text: b.cells[2].textContent,
        })),
      }));
      const reclaimable = {};
      document.querySelectorAll("#reclaimable tr[data-kind]").forEach((tr) => {
        reclaimable[tr.getAttribute("data-kind")] = num(tr.querySelector("[data-bytes]"), "data-bytes");
      });
      const fill = q("#fill-date");
      return {
        storage: q("#storage") && q("#storage").textContent,
        total_bytes: num(q("#summary .total"), "data-bytes"),
        blobs: num(q("#blobs"), "data-value"),
        repositories: num(q("#repositories"), "data-value"),
        reclaimable, rows, tiles, details,
        fill_date: fill ? fill.getAttribute("data-value") : null,
        csp: (q("meta[http-equiv='Content-Security-Policy']") || { content: null }).content,
      };
    });

    const order = () => page.$$eval("#repos tbody tr", (trs) => trs.map((t) => t.getAttribute("data-repo")));
    const header = (label) => page.locator("#repos thead th", { hasText: new RegExp("^" + label) }).first();
    out.order_initial = await order();
    await header("bytes").click();
    out.order_bytes_first_click = await order();
    await header("bytes").click();
    out.order_bytes_second_click = await order();
    await header("repository").click();
    out.order_name = await order();
    await page.fill("#filter", filterText);
    out.filtered_visible = await page.$$eval("#repos tbody tr", (trs) => trs.filter((t) => !t.hidden).map((t) => t.getAttribute("data-repo")));
    out.filtered_count_text = await page.textContent("#shown");
    await page.fill("#filter", "");
    const tile = page.locator("#treemap .tile[data-detail]").first();
    if (await tile.count()) {
      const detail = await tile.getAttribute("data-detail");
      await tile.click();
      out.tile_opened = await page.$eval("#" + detail, (d) => d.open);
    }
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(out) + "\n");
})().catch((e) => { console.error(e); process.exit(1); });
