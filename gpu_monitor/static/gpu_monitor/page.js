// The one page script: what every page of the app shares, as window.gpuMonitor (as
// django-debug-toolbar's utils.js serves its panels). Loaded before each page's own
// script (dashboard.js, fleet.js, usage.js) and a sub-app's panel script.
//
// - getJSON(url): fetch as JSON; an error answer throws an Error whose message carries
//   the status and the body's "detail" ("HTTP 503: The GPU history database did not
//   answer (OperationalError); see the server log.").
// - refresher({ load, draw, every, banner, what }): a refresh loop with a generation
//   token: run() starts a new generation, and the answer of an older one (a slow answer
//   for a window the viewer has left) is dropped, never drawn.
// - banner(element): the one way a page says that its data is stale, and clears it.
// - formatters: the card's texts (memory, power, a whole number), clock times, ages.
//   dashboard.py formats the first render by the same rules (half up, "N/A" for unknown).
(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);

  // The JSON a page embeds with Django's json_script.
  const embedded = (id) => JSON.parse($(id).textContent);

  async function getJSON(url) {
    const response = await fetch(url, {
      headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store",
    });
    if (!response.ok) {
      let detail = "";
      try { detail = (await response.json()).detail || ""; } catch (error) { /* not JSON */ }
      const error = new Error(`HTTP ${response.status}${detail ? `: ${detail}` : ""}`);
      error.status = response.status;
      throw error;
    }
    return response.json();
  }

  function element(tag, className, text) {
    const made = document.createElement(tag);
    if (className) made.className = className;
    if (text !== undefined) made.textContent = text;
    return made;
  }

  // A red badge on a card (a sign of failing hardware, an XID), its details on hover.
  function badge(text, title, kind) {
    const span = element("span", "badge bad", text);
    span.title = title;
    if (kind) span.dataset.kind = kind;
    return span;
  }

  function setText(target, text) {
    if (target.textContent !== text) target.textContent = text;
  }

  // -- formatters ----------------------------------------------------------------------
  const known = (value) => value !== null && value !== undefined;
  // Half up, as dashboard.py's whole(): floor(x + 0.5) on the same float, the same digits.
  const whole = (value) => Math.floor(value + 0.5);
  const clamp = (value) => Math.max(0, Math.min(100, value));
  const na = (value, suffix) => (known(value) ? `${value}${suffix}` : "N/A");
  // Used memory as a share of the total; null when either is unknown or the total is 0.
  const memoryPercent = (used, total) => (known(used) && total ? (100 * used) / total : null);

  function memoryText(used, total) { // 61170 / 81559 MiB (75%)
    const percent = memoryPercent(used, total);
    return percent === null ? "N/A" : `${used} / ${total} MiB (${whole(percent)}%)`;
  }

  function powerText(draw, limit) { // 71 W / 700 W
    if (!known(draw)) return "Power N/A";
    return `${whole(draw)} W${limit ? ` / ${whole(limit)} W` : ""}`;
  }

  const hhmm = { hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
  const hhmmss = { ...hhmm, second: "2-digit" }; // as the server renders "Rendered"
  const clock = (date) => date.toLocaleTimeString([], hhmmss);

  // As manage.py gpu_fleet says it: 4 s ago, 3 min ago, 2 h ago, 5 d ago.
  function ago(seconds) {
    for (const [unit, size] of [["d", 86400], ["h", 3600], ["min", 60]]) {
      if (seconds >= size) return `${Math.floor(seconds / size)} ${unit} ago`;
    }
    return `${seconds} s ago`;
  }

  // -- the banner and the refresh loop --------------------------------------------------
  function banner(target) {
    return {
      show(text) {
        setText(target, text);
        target.hidden = false;
      },
      clear() { target.hidden = true; },
    };
  }

  // ``load()`` fetches, ``draw(data)`` draws; ``every`` ms between runs (none: run()
  // only when called). A failure says "<what> (<error>); showing data from <time>." on
  // ``banner``; a success clears it and calls ``drawn(time)``.
  function refresher({ load, draw, every, banner: said, what, drawn }) {
    let generation = 0;
    let timer = null;
    let lastSuccess = null;
    async function run() {
      clearTimeout(timer);
      generation += 1;
      const mine = generation;
      try {
        const data = await load();
        if (mine !== generation) return; // a newer run was started: its answer counts
        draw(data);
        lastSuccess = new Date();
        said.clear();
        if (drawn) drawn(lastSuccess);
      } catch (error) {
        if (mine !== generation) return;
        const since = lastSuccess ? clock(lastSuccess) : "page load";
        said.show(`${what} (${error.message}); showing data from ${since}.`);
      } finally {
        if (mine === generation && every) timer = setTimeout(run, every);
      }
    }
    return { run };
  }

  // "Updated 14:05:09" in #updated after each success.
  const updated = (time) => setText($("updated"), `Updated ${clock(time)}`);

  window.gpuMonitor = {
    $, embedded, getJSON, element, badge, setText, banner, refresher, updated,
    known, whole, clamp, na, memoryPercent, memoryText, powerText, hhmm, hhmmss, clock, ago,
  };
})();
