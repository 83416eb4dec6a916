// Refreshes the GPU cards from the JSON API in place: no page reload, no flicker.
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("gpu-monitor-config").textContent);
  const $ = (id) => document.getElementById(id);
  const HIGH_PERCENT = 90;
  const HIGH_TEMPERATURE_C = 80;
  let lastSuccess = null;

  async function getJSON(url) {
    const response = await fetch(url, {
      headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store",
    });
    if (!response.ok) {
      const error = new Error(`HTTP ${response.status}`);
      error.status = response.status;
      throw error;
    }
    return response.json();
  }

  const na = (value, suffix) => (value === null || value === undefined ? "N/A" : `${value}${suffix}`);
  const clamp = (value) => Math.max(0, Math.min(100, value));

  function setText(card, field, text) {
    const element = card.querySelector(`[data-field="${field}"]`);
    if (element.textContent !== text) element.textContent = text;
  }

  function setBar(card, name, percent, high) {
    const bar = card.querySelector(`[data-bar="${name}"]`);
    bar.style.width = `${clamp(percent || 0)}%`;
    bar.classList.toggle("high", Boolean(high));
  }

  function fill(card, d) {
    card.dataset.index = d.index;
    card.dataset.uuid = d.uuid || "";
    card.classList.toggle("unavailable", !d.is_available);
    setText(card, "index", String(d.index));
    setText(card, "name", d.name);
    card.querySelector('[data-field="error"]').hidden = d.is_available;
    card.querySelector(".metrics").hidden = !d.is_available;
    setText(card, "error_message", d.error_message || "");
    if (!d.is_available) return;
    const memoryPercent = d.total_memory_mb ? (100 * d.used_memory_mb) / d.total_memory_mb : null;
    setText(card, "memory", d.total_memory_mb === null ? "N/A"
      : `${d.used_memory_mb} / ${d.total_memory_mb} MiB (${Math.round(memoryPercent)}%)`);
    setBar(card, "memory", memoryPercent, memoryPercent >= HIGH_PERCENT);
    setText(card, "utilization", na(d.utilization_percent, "%"));
    setBar(card, "utilization", d.utilization_percent, d.utilization_percent >= HIGH_PERCENT);
    setText(card, "temperature", na(d.temperature_c, " °C"));
    setBar(card, "temperature", d.temperature_c, d.temperature_c >= HIGH_TEMPERATURE_C);
    setText(card, "power", d.power_draw_w === null ? "Power N/A"
      : `${d.power_draw_w.toFixed(0)} W` + (d.power_limit_w ? ` / ${d.power_limit_w.toFixed(0)} W` : ""));
    setText(card, "performance_state", d.performance_state || "N/A");
  }

  function fillProcesses(card, d, processes) {
    const list = card.querySelector('[data-field="processes"]');
    if (!list || !processes) return;
    const mine = processes.processes.filter((p) => p.gpu_index === d.index);
    const items = mine.map((p) => {
      const li = document.createElement("li");
      const who = document.createElement("span");
      who.className = "who";
      const pid = document.createElement("span");
      pid.className = "pid";
      pid.textContent = String(p.pid);
      who.append(pid, ` ${p.username || "?"} · ${p.name || "?"}`);
      const used = document.createElement("span");
      used.className = "used";
      used.textContent = na(p.used_memory_mb, " MiB");
      const bar = document.createElement("div");
      bar.className = "bar thin";
      bar.setAttribute("role", "meter");
      bar.setAttribute("aria-label", `GPU memory of process ${p.pid}`);
      const fillBar = document.createElement("div");
      fillBar.className = "fill";
      const share = d.total_memory_mb && p.used_memory_mb ? (100 * p.used_memory_mb) / d.total_memory_mb : 0;
      fillBar.style.width = `${clamp(share)}%`;
      bar.append(fillBar);
      li.append(who, used, bar);
      return li;
    });
    if (!items.length) {
      const none = document.createElement("li");
      none.className = "none";
      none.textContent = "No processes";
      items.push(none);
    }
    list.replaceChildren(...items);
  }

  function render(devices, status, driver, processes) {
    const cards = $("cards");
    const seen = new Set();
    devices.devices.forEach((d, position) => {
      let card = cards.querySelector(`[data-index="${d.index}"]`);
      if (!card) {
        card = $("card-template").content.firstElementChild.cloneNode(true);
      }
      if (cards.children[position] !== card) cards.insertBefore(card, cards.children[position] || null);
      fill(card, d);
      fillProcesses(card, d, processes);
      seen.add(String(d.index));
    });
    Array.from(cards.children).forEach((card) => {
      if (!seen.has(card.dataset.index)) card.remove();
    });
    $("gpu-count").textContent = String(devices.count);
    $("no-gpu").hidden = status.cuda_available;
    $("no-gpu-reason").textContent = status.error_message || "NVML sees no GPU";
    $("driver-version").textContent = driver ? driver.driver_version : "N/A";
    $("cuda-version").textContent = driver ? driver.cuda_driver_version : "N/A";
  }

  // -- history: charts drawn as SVG paths, a gap wherever a bucket has no sample ------
  let historyWindow = "-1h";
  let historyFetched = 0;
  const HISTORY_EVERY_MS = 15000;
  const BAD_EVENTS = new Set(["xid", "gpu_lost", "nvml_unavailable", "samples_dropped"]);

  function chartPath(t, values, low, high) {
    const first = t[0];
    const span = Math.max(1, t[t.length - 1] - first);
    let line = "";
    let area = "";
    let run = [];
    const flush = () => {
      if (!run.length) return;
      if (run.length === 1) run.push([run[0][0] + 2, run[0][1]]); // a lone sample: a dash
      line += run.map(([x, y], i) => `${i ? "L" : "M"}${x.toFixed(1)} ${y.toFixed(1)}`).join(" ") + " ";
      area += `M${run[0][0].toFixed(1)} 48 ` + run.map(([x, y]) => `L${x.toFixed(1)} ${y.toFixed(1)}`).join(" ")
        + ` L${run[run.length - 1][0].toFixed(1)} 48 Z `;
      run = [];
    };
    values.forEach((value, i) => {
      if (value === null || value === undefined) { flush(); return; }
      const x = (300 * (t[i] - first)) / span;
      const y = 47 - (46 * (Math.min(high, Math.max(low, value)) - low)) / Math.max(1, high - low);
      run.push([x, y]);
    });
    flush();
    return [line.trim(), area.trim()];
  }

  function drawChart(card, name, t, values, low, high, unit) {
    const figure = card.querySelector(`[data-chart="${name}"]`);
    if (!figure) return;
    const [line, area] = chartPath(t, values, low, high);
    figure.querySelector(".line").setAttribute("d", line);
    figure.querySelector(".area").setAttribute("d", area);
    const seen = values.filter((v) => v !== null && v !== undefined);
    card.querySelector(`[data-range="${name}"]`).textContent = seen.length
      ? `max ${Math.round(Math.max(...seen))}${unit}` : "no data";
  }

  function eventText(e) {
    const when = new Date(e.timestamp).toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
    const what = e.kind === "xid" ? `XID ${e.xid}` : e.kind.replaceAll("_", " ");
    return `${when} ${what}${e.message && e.kind !== "xid" ? `: ${e.message}` : ""}`;
  }

  function fillEvents(list, events) {
    if (!list) return;
    list.replaceChildren(...events.slice(0, 5).map((e) => {
      const li = document.createElement("li");
      li.textContent = eventText(e);
      if (BAD_EVENTS.has(e.kind)) li.className = "bad";
      return li;
    }));
  }

  async function refreshHistory(force) {
    if (!config.history || (!force && Date.now() - historyFetched < HISTORY_EVERY_MS)) return;
    historyFetched = Date.now();
    const query = `since=${encodeURIComponent(historyWindow)}`;
    const [history, events] = await Promise.all([
      getJSON(`${config.history}?${query}&points=360`), // 1 h: 10 s buckets, the default tick
      getJSON(`${config.events}?${query}&page_size=200`),
    ]);
    document.querySelectorAll("#cards .card").forEach((card) => {
      const series = history.series.find((s) => s.gpu_uuid === card.dataset.uuid);
      // Until the window has filled, draw from the first bucket with a sample.
      const from = series ? Math.max(0, series.temperature_c.findIndex((v) => v !== null)) : 0;
      const cut = (values) => values.slice(from);
      const t = series ? cut(series.t) : [0, 1];
      const none = t.map(() => null);
      const memory = series ? cut(series.used_memory_mb.map((used, i) => {
        const total = series.total_memory_mb[i];
        return used === null || !total ? null : (100 * used) / total;
      })) : none;
      drawChart(card, "utilization", t, series ? cut(series.utilization_percent) : none, 0, 100, "%");
      drawChart(card, "memory", t, memory, 0, 100, "%");
      drawChart(card, "temperature", t, series ? cut(series.temperature_c) : none, 20, 100, " °C");
      // A GPU lost before its UUID was ever read has events by index only.
      const mine = (e) => (card.dataset.uuid ? e.gpu_uuid === card.dataset.uuid
        : !e.gpu_uuid && String(e.gpu_index) === card.dataset.index);
      fillEvents(card.querySelector('[data-field="events"]'), events.results.filter(mine));
    });
    fillEvents($("host-events"), events.results.filter((e) => e.gpu_index === null));
  }

  document.querySelectorAll("[data-window]").forEach((button) => {
    button.addEventListener("click", () => {
      historyWindow = button.dataset.window;
      document.querySelectorAll("[data-window]").forEach((b) => b.setAttribute("aria-pressed", String(b === button)));
      refreshHistory(true).catch(() => {});
    });
  });

  async function refresh() {
    try {
      const [devices, status] = await Promise.all([getJSON(config.devices), getJSON(config.status)]);
      let driver = null;
      try {
        driver = await getJSON(config.driver);
      } catch (error) {
        if (error.status !== 503) throw error; // 503: no NVML, said by the status message
      }
      let processes = null;
      if (config.processes) {
        try {
          processes = await getJSON(config.processes);
        } catch (error) {
          if (error.status !== 403) throw error; // no longer allowed: keep the last list
        }
      }
      render(devices, status, driver, processes);
      await refreshHistory(false);
      lastSuccess = new Date();
      $("updated").textContent = `Updated ${lastSuccess.toLocaleTimeString()}`;
      $("api-error").hidden = true;
    } catch (error) {
      const since = lastSuccess ? lastSuccess.toLocaleTimeString() : "page load";
      $("api-error").textContent = `Cannot reach the GPU API (${error.message}); showing data from ${since}.`;
      $("api-error").hidden = false;
    } finally {
      setTimeout(refresh, config.interval * 1000);
    }
  }

  refresh();
})();
