// The usage page: fills itself from GET usage (by user) and GET usage/idle as JSON.
// Every name from the data is set as text (textContent), never parsed as HTML.
(function () {
  "use strict";
  const page = window.gpuMonitor; // page.js
  const { $, element, getJSON } = page;
  const config = page.embedded("gpu-usage-config");
  let usageWindow = config.window;

  const pad = (n) => String(n).padStart(2, "0");
  function localTime(iso) { // 2026-11-28 14:05, local time
    if (!iso) return "N/A";
    const d = new Date(iso);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
  }
  const hours = (value) => (value === null || value === undefined ? "N/A" : value.toFixed(2));
  const percent = (value) => (value === null || value === undefined ? "N/A" : `${Math.round(value)}%`);
  const mib = (value) => (value === null || value === undefined ? "N/A" : `${value} MiB`);
  const who = (user) => (user === "" || user === null || user === undefined ? "?" : user);

  function duration(seconds) { // 2 h 05 min, 3 d 4 h, 12 min
    const minutes = Math.max(0, Math.floor(seconds / 60));
    if (minutes >= 1440) return `${Math.floor(minutes / 1440)} d ${Math.floor((minutes % 1440) / 60)} h`;
    if (minutes >= 60) return `${Math.floor(minutes / 60)} h ${pad(minutes % 60)} min`;
    return `${minutes} min`;
  }

  function fillIdle(idle) {
    const now = Date.now();
    const items = idle.gpus.map((g) => {
      const li = element("li");
      li.dataset.user = who(g.user);
      li.append(
        element("span", "user", who(g.user)),
        element("span", "gpu", `GPU ${g.gpu_index} · ${g.host}`),
        element("span", "since", `idle since ${localTime(g.idle_since)} (${duration((now - Date.parse(g.idle_since)) / 1000)})`),
        element("span", "memory", mib(g.memory_mb)),
      );
      li.title = g.gpu_uuid || "";
      return li;
    });
    $("idle").replaceChildren(...items);
    $("idle-none").hidden = items.length > 0;
    $("idle-panel").classList.toggle("alert", items.length > 0);
  }

  function fillBars(rows) {
    const most = Math.max(0, ...rows.map((r) => r.gpu_hours));
    const items = rows.map((r) => {
      const li = element("li");
      li.dataset.user = who(r.user);
      const name = element("span", "who", who(r.user));
      name.title = who(r.user);
      const stack = element("div", "stack");
      stack.setAttribute("role", "img");
      stack.setAttribute("aria-label",
        `${who(r.user)}: ${hours(r.active_gpu_hours)} active and ${hours(r.idle_gpu_hours)} idle GPU-hours`);
      const active = element("div", "part active");
      const idle = element("div", "part idle");
      active.style.width = `${most ? (100 * r.active_gpu_hours) / most : 0}%`;
      idle.style.width = `${most ? (100 * r.idle_gpu_hours) / most : 0}%`;
      stack.append(active, idle);
      const numbers = element("span", "numbers", `${hours(r.gpu_hours)} h`);
      numbers.title = `active ${hours(r.active_gpu_hours)} h, idle ${hours(r.idle_gpu_hours)} h, `
        + `shared ${hours(r.shared_gpu_hours)} h`;
      if (r.idle_gpu_hours > 0) numbers.append(element("span", "idle-hours", ` · ${hours(r.idle_gpu_hours)} idle`));
      li.append(name, stack, numbers);
      return li;
    });
    $("bars").replaceChildren(...items);
    $("bars-none").hidden = items.length > 0;
  }

  function cells(row, first, tag) {
    const tr = element("tr");
    const head = element(tag === "td" ? "th" : tag, "text", first);
    if (tag === "td") { head.scope = "row"; head.title = first; }
    tr.append(head);
    const values = [
      hours(row.gpu_hours), hours(row.idle_gpu_hours), hours(row.active_gpu_hours),
      hours(row.shared_gpu_hours), percent(row.utilization_percent), mib(row.max_memory_mb),
      hours(row.memory_gib_hours),
    ];
    for (const value of values) tr.append(element(tag, "", value));
    tr.append(element(tag, "text", localTime(row.first_seen)), element(tag, "text", localTime(row.last_seen)));
    return tr;
  }

  function fillTable(report) {
    $("rows").replaceChildren(...report.rows.map((r) => cells(r, who(r.user), "td")));
    $("total").replaceChildren(...(report.rows.length ? [cells(report.total, "Total", "th")] : []));
    $("table-panel").hidden = report.rows.length === 0; // the bars say "no GPU was held"
  }

  async function load() {
    const query = new URLSearchParams({ by: "user", since: usageWindow });
    const [report, idle] = await Promise.all([
      getJSON(`${config.usage}?${query}`),
      getJSON(`${config.idle}?${new URLSearchParams({ minutes: config.idle_minutes })}`),
    ]);
    return { report, idle };
  }

  function draw({ report, idle }) {
    fillIdle(idle);
    fillBars(report.rows);
    fillTable(report);
    $("span").textContent = `${localTime(report.since)} to ${localTime(report.until)}`;
  }

  // A window switched while a fetch was out: that answer is dropped (page.js).
  const refresher = page.refresher({
    load,
    draw,
    every: config.interval * 1000,
    banner: page.banner($("api-error")),
    what: "Cannot read GPU usage",
    drawn: page.updated,
  });

  document.querySelectorAll("[data-window]").forEach((button) => {
    button.addEventListener("click", () => {
      usageWindow = button.dataset.window;
      document.querySelectorAll("[data-window]").forEach((b) => b.setAttribute("aria-pressed", String(b === button)));
      refresher.run();
    });
  });

  refresher.run();
})();
