// The fleet's pages. On the fleet page: one tile per host, drawn from the page's own
// JSON (embedded at load, then fetched every interval) and updated in place; a filter
// box and the state buttons hide tiles without asking the server; the sort control asks
// it for the hosts in another order (?sort=, kept in the URL). On a host's page
// (the dashboard's, which dashboard.js refreshes): the header's state and last seen.
(function () {
  "use strict";
  const page = window.gpuMonitor; // page.js
  const { $, ago, setText } = page;

  function showHost(state, age) {
    $("host-state").dataset.state = state;
    $("host-state").textContent = state;
    $("host-seen").textContent = ago(age);
    document.body.dataset.state = state;
  }

  if ($("host-state")) {
    showHost($("host-state").dataset.state, Number($("host-seen").dataset.age));
    document.addEventListener("gpu-monitor:data", (event) => {
      showHost(event.detail.host.state, event.detail.host.age_seconds);
    });
    return;
  }

  const config = page.embedded("fleet-config");
  const tiles = $("tiles");
  const byHost = new Map(); // host -> its tile, in the order of the last data
  let show = "all";
  let sort = config.sort; // the server's order of the tiles (limits.SORTS)

  const hostURL = (host) => config.host_page.replace(config.placeholder, encodeURIComponent(host));
  const gib = (mb, total) => (mb / 1024).toFixed(total >= 10240 ? 0 : 1);

  function tileOf(host) {
    let tile = byHost.get(host);
    if (!tile) {
      tile = $("tile-template").content.firstElementChild.cloneNode(true);
      tile.dataset.host = host;
      tile.href = hostURL(host);
      tile.querySelector(".host").textContent = host;
      const seen = document.createElement("span"); // a stale host's last seen, under its problem
      seen.className = "seen";
      tile.append(seen);
    }
    return tile;
  }

  // Each GPU a cell shaded by its utilisation (hatched where it gave none), outlined in
  // red where the host reports a problem on it.
  function fillStrip(strip, h) {
    const bad = new Set(h.problems.map((p) => p.gpu_index));
    while (strip.children.length > h.gpu_utilization.length) strip.lastChild.remove();
    while (strip.children.length < h.gpu_utilization.length) strip.append(document.createElement("span"));
    h.gpu_utilization.forEach((u, i) => {
      const cell = strip.children[i];
      const na = u === null || u === undefined;
      cell.className = (na ? "na" : "") + (bad.has(i) ? " bad" : "");
      cell.style.setProperty("--u", na ? "0%" : `${Math.max(0, Math.min(100, u))}%`);
      cell.title = `GPU ${i}: ${na ? "N/A" : `${u}%`}`;
    });
  }

  // The last line: a host's first problem in red, else when a stale or down host was
  // last seen; a stale or down host with a problem says both, on two lines.
  function fillStatus(status, seen, h) {
    const problems = h.problems.map((p) => `GPU ${p.gpu_index}: ${p.message}`);
    if (h.xid_24h) problems.push(`${h.xid_24h} XID error(s) in 24 h`);
    const text = problems.length > 1 ? `${problems[0]} (+${problems.length - 1})` : problems[0] || "";
    const lastSeen = h.state === "up" ? "" : `last seen ${ago(h.age_seconds)}`;
    setText(status, text || lastSeen);
    status.className = `status ${text || h.state === "up" ? "bad" : h.state}`;
    status.title = problems.join("\n");
    setText(seen, text ? lastSeen : "");
    seen.className = `seen ${h.state}`;
  }

  function fill(tile, h) {
    tile.dataset.state = h.state;
    setText(tile.querySelector(".flag"), h.state === "up" ? "" : h.state);
    tile.dataset.problem = h.problems.length ? "1" : "";
    tile.title = `${h.host}: ${h.state}, ${h.gpu_count} GPU(s), last seen ${ago(h.age_seconds)}`;
    fillStrip(tile.querySelector(".strip"), h);
    const known = h.used_memory_mb !== null && h.total_memory_mb;
    const share = known ? (100 * h.used_memory_mb) / h.total_memory_mb : 0;
    const fillBar = tile.querySelector(".fill");
    fillBar.style.width = `${share.toFixed(1)}%`;
    fillBar.classList.toggle("high", share >= config.high_percent);
    setText(tile.querySelector(".mem"), known
      ? `${gib(h.used_memory_mb, h.total_memory_mb)} / ${gib(h.total_memory_mb, h.total_memory_mb)} GiB` : "memory N/A");
    setText(tile.querySelector(".util"), h.utilization_percent === null
      ? "util N/A" : `util ${Math.round(h.utilization_percent)}%`);
    const temp = tile.querySelector(".temp");
    setText(temp, h.max_temperature_c === null ? "" : `${h.max_temperature_c} °C`);
    temp.classList.toggle("hot", h.max_temperature_c !== null && h.max_temperature_c >= config.hot_temperature_c);
    fillStatus(tile.querySelector(".status"), tile.querySelector(".seen"), h);
  }

  function matches(tile, q) {
    if (q && !tile.dataset.host.toLowerCase().includes(q)) return false;
    if (show === "all") return true;
    return show === "problem" ? tile.dataset.problem === "1" : tile.dataset.state === show;
  }

  function applyFilter() {
    const q = $("filter").value.trim().toLowerCase();
    let shown = 0;
    byHost.forEach((tile) => {
      const visible = matches(tile, q);
      if (tile.hidden === visible) tile.hidden = !visible;
      if (visible) shown += 1;
    });
    $("shown").textContent = shown === byHost.size ? "" : `${shown} of ${byHost.size} shown`;
  }

  function render(data) {
    const ordered = data.hosts.map((h) => {
      const tile = tileOf(h.host);
      fill(tile, h);
      return tile;
    });
    const seen = new Set(data.hosts.map((h) => h.host));
    byHost.forEach((tile, host) => {
      if (!seen.has(host)) tile.remove();
    });
    byHost.clear();
    ordered.forEach((tile) => byHost.set(tile.dataset.host, tile));
    if (!tiles.children.length) {
      tiles.append(...ordered); // the first drawing: one insertion
    } else {
      ordered.forEach((tile, i) => {
        if (tiles.children[i] !== tile) tiles.insertBefore(tile, tiles.children[i] || null);
      });
    }
    $("count-all").textContent = String(data.count);
    Object.entries(data.counts).forEach(([state, n]) => { $(`count-${state}`).textContent = String(n); });
    $("count-problem").textContent = String(data.problem_hosts);
    $("no-hosts").hidden = data.count > 0;
    applyFilter();
  }

  $("filter").addEventListener("input", () => {
    applyFilter();
    keepInURL("q", $("filter").value, "");
  });
  // The page's URL says its sort (none for the page's default) and its filter, so that
  // a reload keeps them.
  function keepInURL(name, value, fallback) {
    const url = new URL(window.location.href);
    if (value && value !== fallback) url.searchParams.set(name, value); else url.searchParams.delete(name);
    window.history.replaceState(null, "", url);
  }

  const fleetURL = () => `${config.fleet}?sort=${encodeURIComponent(sort)}`;

  $("sort").addEventListener("change", () => {
    sort = $("sort").value;
    keepInURL("sort", sort, config.page_sort);
    refresher.run(); // at once, in the new order; a slower answer of the old one is dropped
  });
  document.querySelectorAll("[data-show]").forEach((button) => {
    button.addEventListener("click", () => {
      show = button.dataset.show;
      document.querySelectorAll("[data-show]").forEach((b) => b.setAttribute("aria-pressed", String(b === button)));
      applyFilter();
    });
  });

  const refresher = page.refresher({
    load: () => page.getJSON(fleetURL()),
    draw: render,
    every: config.interval * 1000,
    banner: page.banner($("api-error")),
    what: "Cannot reach the GPU API",
    drawn: page.updated,
  });
  render(page.embedded("fleet-data")); // the first drawing, from the page's own data
  setTimeout(refresher.run, config.interval * 1000);
})();
