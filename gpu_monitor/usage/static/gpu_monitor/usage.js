// The usage page: fills itself from GET usage (by user) and GET usage/idle as JSON.
// Every name from the data is set as text (textContent), never parsed as HTML.
// The table shows its first TOP rows in the chosen order (at first the most GPU-hours)
// and the rest on "Show all"; the filter, the sort and "show all" live here, so a
// refresh or another window redraws the new data the same way.
(function () {
  "use strict";
  const page = window.gpuMonitor; // page.js
  const { $, element, getJSON } = page;
  const config = page.embedded("gpu-usage-config");
  let usageWindow = config.window;

  const TOP = 20; // rows of the table, bars and idle GPUs before "Show all"
  const TEXT_KEYS = new Set(["user"]);
  const TIME_KEYS = new Set(["first_seen", "last_seen"]);
  const view = { sort: "gpu_hours", descending: true, all: false, idleAll: false };
  let last = null; // the last data drawn: the controls redraw it without a fetch

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

  // "notified 2x, last 3 h ago" (the local time in the title), "not notified", or
  // nothing where the server has no gpu_monitor.notify (the field is null).
  function notifiedText(told) {
    if (!told) return [];
    if (!told.count) return [element("span", "notified never", "not notified")];
    const span = element("span", "notified",
      `notified ${told.count}x, last ${page.ago(Math.max(0, Math.floor((Date.now() - Date.parse(told.last)) / 1000)))}`);
    span.title = localTime(told.last);
    return [span];
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
        ...notifiedText(g.notified),
      );
      li.title = g.gpu_uuid || "";
      return li;
    });
    $("idle").replaceChildren(...(view.idleAll ? items : items.slice(0, TOP)));
    $("idle-none").hidden = items.length > 0;
    $("idle-panel").classList.toggle("alert", items.length > 0);
    showAll($("idle-all"), $("idle-more"), view.idleAll, items.length, "GPUs");
  }

  // A "Show all (160)" / "Show the first 20" toggle, hidden while everything fits.
  function showAll(button, box, pressed, count, what) {
    box.hidden = count <= TOP;
    button.setAttribute("aria-pressed", String(pressed));
    page.setText(button, pressed ? `Show the first ${TOP}` : `Show all (${count})`);
    button.title = pressed ? "" : `${count - TOP} more ${what}`;
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
    $("bars").replaceChildren(...items.slice(0, TOP));
    $("bars-none").hidden = items.length > 0;
    $("bars-more").hidden = items.length <= TOP;
    page.setText($("bars-more"), `The ${TOP} users with the most GPU-hours; all ${items.length} are in the table.`);
  }

  // Times as their age ("3 h ago", as gpu_fleet says it), the local time in the title.
  function timeCell(tag, iso) {
    if (!iso) return element(tag, "text", "N/A");
    const cell = element(tag, "text time", page.ago(Math.max(0, Math.floor((Date.now() - Date.parse(iso)) / 1000))));
    cell.title = localTime(iso);
    return cell;
  }

  const labels = [...document.querySelectorAll("#table thead th")].map((th) => th.textContent.trim());

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
    tr.append(timeCell(tag, row.first_seen), timeCell(tag, row.last_seen));
    [...tr.children].forEach((cell, i) => { cell.dataset.label = labels[i]; });
    return tr;
  }

  // The value a column sorts by: text for the user, the epoch for times, else the number.
  function sortValue(row, key) {
    if (TEXT_KEYS.has(key)) return who(row.user);
    const value = row[key];
    if (value === null || value === undefined) return null;
    return TIME_KEYS.has(key) ? Date.parse(value) : value;
  }

  function sorted(rows) {
    const sign = view.descending ? -1 : 1;
    const text = TEXT_KEYS.has(view.sort);
    // Array.prototype.sort is stable: equal values keep the API's order (most GPU-hours).
    return [...rows].sort((a, b) => {
      const x = sortValue(a, view.sort);
      const y = sortValue(b, view.sort);
      if (x === null || y === null) return (x === null) - (y === null); // unknown last
      if (text) return sign * x.localeCompare(y, undefined, { numeric: true, sensitivity: "base" });
      return sign * (x - y);
    });
  }

  function matching(rows) {
    const wanted = $("filter").value.trim().toLocaleLowerCase();
    return wanted ? rows.filter((r) => who(r.user).toLocaleLowerCase().includes(wanted)) : rows;
  }

  function markSort() {
    document.querySelectorAll("#table thead th").forEach((th) => {
      if (th.dataset.key === view.sort) th.setAttribute("aria-sort", view.descending ? "descending" : "ascending");
      else th.removeAttribute("aria-sort");
    });
  }

  function fillTable(report) {
    const found = sorted(matching(report.rows));
    const shown = view.all ? found : found.slice(0, TOP);
    $("rows").replaceChildren(...shown.map((r) => cells(r, who(r.user), "td")));
    $("total").replaceChildren(...(report.rows.length ? [cells(report.total, "Total", "th")] : []));
    $("table-panel").hidden = report.rows.length === 0; // the bars say "no GPU was held"
    $("rows-none").hidden = found.length > 0;
    const of = found.length === report.rows.length ? "" : ` (${report.rows.length} in all)`;
    page.setText($("shown"), `${shown.length} of ${found.length} users${of}`);
    showAll($("show-all"), $("show-all"), view.all, found.length, "users");
    markSort();
  }

  async function load() {
    const query = new URLSearchParams({ by: "user", since: usageWindow });
    const [report, idle] = await Promise.all([
      getJSON(`${config.usage}?${query}`),
      getJSON(`${config.idle}?${new URLSearchParams({ minutes: config.idle_minutes })}`),
    ]);
    return { report, idle };
  }

  function draw(data) {
    last = data;
    const { report, idle } = data;
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

  // The table's controls redraw what was fetched last; the next refresh keeps them.
  $("filter").addEventListener("input", () => { if (last) fillTable(last.report); });
  $("show-all").addEventListener("click", () => {
    view.all = !view.all;
    if (last) fillTable(last.report);
  });
  $("idle-all").addEventListener("click", () => {
    view.idleAll = !view.idleAll;
    if (last) fillIdle(last.idle);
  });
  document.querySelectorAll("#table thead th").forEach((th) => {
    th.querySelector("button").addEventListener("click", () => {
      const key = th.dataset.key;
      // The same column again: the other way; a new one: names A to Z, the rest most first.
      view.descending = key === view.sort ? !view.descending : !TEXT_KEYS.has(key);
      view.sort = key;
      if (last) fillTable(last.report);
      else markSort();
    });
  });

  markSort();
  refresher.run();
})();
