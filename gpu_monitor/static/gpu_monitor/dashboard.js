// Refreshes the GPU cards in place from the dashboard's own JSON (the page with
// Accept: application/json): no page reload, no flicker. Charts are inline SVG.
// With config.host (a recorded host's page) the history and events are that host's;
// each refresh's data is announced as a "gpu-monitor:data" event for pages that extend it.
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("gpu-monitor-config").textContent);
  const $ = (id) => document.getElementById(id);
  const HIGH_PERCENT = config.high_percent; // gpu_monitor/rules.py: one definition
  const HOT_TEMPERATURE_C = config.hot_temperature_c;
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
    fillProblems(card, d.problems || []);
    if (!d.is_available) return;
    const memoryPercent = d.total_memory_mb ? (100 * d.used_memory_mb) / d.total_memory_mb : null;
    setText(card, "memory", d.total_memory_mb === null ? "N/A"
      : `${d.used_memory_mb} / ${d.total_memory_mb} MiB (${Math.round(memoryPercent)}%)`);
    setBar(card, "memory", memoryPercent, memoryPercent >= HIGH_PERCENT);
    setText(card, "utilization", na(d.utilization_percent, "%"));
    const why = d.utilization_percent === null ? (d.field_errors || {}).utilization_percent || "" : "";
    card.querySelector('[data-field="utilization"]').title = why;
    setText(card, "utilization_why", `N/A: ${why}`);
    card.querySelector('[data-field="utilization_why"]').hidden = !why;
    setBar(card, "utilization", d.utilization_percent, d.utilization_percent >= HIGH_PERCENT);
    setText(card, "temperature", na(d.temperature_c, " °C"));
    setBar(card, "temperature", d.temperature_c, d.temperature_c >= HOT_TEMPERATURE_C);
    setText(card, "power", d.power_draw_w === null ? "Power N/A"
      : `${d.power_draw_w.toFixed(0)} W` + (d.power_limit_w ? ` / ${d.power_limit_w.toFixed(0)} W` : ""));
    setText(card, "performance_state", d.performance_state || "N/A");
    fillMIG(card, d.mig_devices || []);
  }

  function badge(text, title, kind) {
    const span = document.createElement("span");
    span.className = "badge bad";
    span.textContent = text;
    span.title = title;
    if (kind) span.dataset.kind = kind;
    return span;
  }

  // Signs of failing hardware, as the server's rule (gpu_monitor/rules.py) found them.
  function fillProblems(card, problems) {
    card.classList.toggle("problem", problems.length > 0);
    card.querySelector('[data-field="problems"]')
      .replaceChildren(...problems.map((p) => badge(p.badge, p.message, p.kind)));
  }

  function fillMIG(card, migs) {
    card.querySelector(".mig").hidden = !migs.length;
    card.querySelector('[data-field="mig"]').replaceChildren(...migs.map((m) => {
      const li = document.createElement("li");
      li.title = m.uuid || "";
      const name = document.createElement("span");
      name.className = "who";
      name.textContent = (m.name || "MIG device").split("MIG ").pop();
      const used = document.createElement("span");
      used.className = "used";
      used.textContent = m.used_memory_mb === null || !m.total_memory_mb ? "N/A"
        : `${m.used_memory_mb} / ${m.total_memory_mb} MiB`;
      li.append(name, used);
      return li;
    }));
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

  function render(data) {
    const { status, driver, processes } = data;
    const cards = $("cards");
    const seen = new Set();
    data.devices.forEach((d, position) => {
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
    $("gpu-count").textContent = String(data.count);
    $("no-gpu").hidden = status.cuda_available;
    $("no-gpu-reason").textContent = status.error_message || "NVML sees no GPU";
    $("driver-version").textContent = driver ? driver.driver_version : "N/A";
    $("cuda-version").textContent = driver ? driver.cuda_driver_version : "N/A";
    document.dispatchEvent(new CustomEvent("gpu-monitor:data", { detail: data }));
  }

  // -- history: each bucket drawn where it falls in the window (x from its time), a gap
  // wherever a bucket has no sample, a time axis in local time, a read-out on hover ----
  let historyWindow = "-1h";
  let historyFetched = 0;
  const HISTORY_EVERY_MS = 15000;
  const BAD_EVENTS = new Set(["xid", "gpu_lost", "nvml_unavailable", "samples_dropped"]);
  const W = 300; // the SVG's viewBox: 300 x 48, stretched to the card's width
  const H = 48;
  const TICK_STEPS = [60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800];
  const CHARTS = {
    utilization: { low: 0, high: 100, unit: "%" },
    memory: { low: 0, high: 100, unit: "%" },
    temperature: { low: 20, high: 100, unit: " °C" },
  };
  const hhmm = { hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
  const hhmmss = { ...hhmm, second: "2-digit" }; // as the server renders the first page

  const timeText = (epoch, span) => new Date(epoch * 1000).toLocaleString([], span > 86400
    ? { weekday: "short", day: "numeric", ...hhmm } : hhmm);

  // Tick times: whole steps of local time (a local midnight for a day), at most ``most``.
  function ticks(since, until, most) {
    const span = until - since;
    const step = TICK_STEPS.find((s) => span / s <= most) || TICK_STEPS[TICK_STEPS.length - 1];
    const offset = (epoch) => -new Date(epoch * 1000).getTimezoneOffset() * 60; // local - UTC
    const found = [];
    for (let local = Math.ceil((since + offset(since)) / step) * step; ; local += step) {
      const epoch = local - offset(local - offset(since));
      if (epoch >= until) break;
      if (epoch > since) found.push(epoch);
    }
    const label = (epoch) => new Date(epoch * 1000).toLocaleString([], step >= 86400
      ? { weekday: "short", day: "numeric" } : hhmm);
    return found.map((epoch) => ({ epoch, label: label(epoch) }));
  }

  // Runs of consecutive buckets with a value: [[first, last], ...].
  function runs(values) {
    const found = [];
    values.forEach((v, i) => {
      if (v === null || v === undefined) return;
      const last = found[found.length - 1];
      if (last && last[1] === i - 1) last[1] = i; else found.push([i, i]);
    });
    return found;
  }

  // An SVG path of ``values`` (line, and the area under it): a run starts at the start of
  // its first bucket and ends at the end of its last, so one bucket is as wide as its time.
  function chartPath(w, values, low, high) {
    const y = (v) => (H - 1) - ((H - 2) * (Math.min(high, Math.max(low, v)) - low)) / Math.max(1, high - low);
    let line = "";
    let area = "";
    runs(values).forEach(([a, b]) => {
      const points = [[w.x(Math.max(w.since, w.t[a])), y(values[a])]];
      for (let i = a; i <= b; i += 1) points.push([w.x(w.t[i] + w.step / 2), y(values[i])]);
      points.push([w.x(Math.min(w.until, w.t[b] + w.step)), y(values[b])]);
      const d = points.map(([px, py], i) => `${i ? "L" : "M"}${px.toFixed(2)} ${py.toFixed(1)}`).join(" ");
      line += `${d} `;
      area += `M${points[0][0].toFixed(2)} ${H} ${d.replace("M", "L")} L${points[points.length - 1][0].toFixed(2)} ${H} Z `;
    });
    return [line.trim(), area.trim()];
  }

  // The parts of the window without a sample, hatched, and labelled "no data" where
  // the label fits.
  function drawGaps(figure, w, values) {
    const covered = runs(values).map(([a, b]) => [w.t[a], Math.min(w.until, w.t[b] + w.step)]);
    const gaps = [];
    let from = w.since;
    covered.forEach(([start, end]) => {
      if (start > from) gaps.push([from, start]);
      from = Math.max(from, end);
    });
    if (from < w.until) gaps.push([from, w.until]);
    const span = w.until - w.since;
    const holder = figure.querySelector(".gaps");
    holder.replaceChildren(...gaps.map(([a, b]) => {
      const gap = document.createElement("span");
      gap.className = "nodata";
      gap.style.left = `${(100 * (a - w.since)) / span}%`;
      gap.style.width = `${(100 * (b - a)) / span}%`;
      const label = document.createElement("span");
      label.textContent = "no data";
      gap.append(label);
      return gap;
    }));
    holder.querySelectorAll(".nodata").forEach((gap) => {
      if (gap.firstChild.offsetWidth > gap.clientWidth - 4) gap.firstChild.remove();
    });
  }

  function drawAxis(figure, w) {
    const axis = figure.querySelector(".axis");
    const most = Math.max(2, Math.floor(axis.clientWidth / 60)); // a label is about 45 px
    const span = w.until - w.since;
    axis.replaceChildren(...ticks(w.since, w.until, most)
      .filter(({ epoch }) => (epoch - w.since) / span > 0.06 && (w.until - epoch) / span > 0.06)
      .map(({ epoch, label }) => {
        const tick = document.createElement("span");
        tick.dataset.t = String(epoch);
        tick.style.left = `${(100 * (epoch - w.since)) / span}%`;
        tick.textContent = label;
        return tick;
      }));
  }

  // ``values``: the line (bucket averages or maxima); ``peaks``: the bucket maxima,
  // which the "max" label and the read-out use so that a moment's maximum is the same
  // at every window.
  function drawChart(card, name, w, values, peaks) {
    const figure = card.querySelector(`[data-chart="${name}"]`);
    if (!figure) return;
    const { low, high, unit } = CHARTS[name];
    const [line, area] = chartPath(w, values, low, high);
    figure.querySelector(".line").setAttribute("d", line);
    figure.querySelector(".area").setAttribute("d", area);
    figure.querySelector(".peak").setAttribute("d", peaks === values ? "" : chartPath(w, peaks, low, high)[0]);
    drawGaps(figure, w, values);
    drawAxis(figure, w);
    const seen = peaks.filter((v) => v !== null && v !== undefined);
    card.querySelector(`[data-range="${name}"]`).textContent = seen.length
      ? `max ${Math.round(Math.max(...seen))}${unit}` : "no data";
    figure.chart = { w, values, peaks, unit };
  }

  function showReadout(figure, event) {
    const chart = figure.chart;
    const plot = figure.querySelector(".plot");
    const readout = figure.querySelector(".readout");
    const cursor = figure.querySelector(".cursor");
    if (!chart) return;
    const box = plot.getBoundingClientRect();
    const share = Math.min(1, Math.max(0, (event.clientX - box.left) / box.width));
    const { w, values, peaks, unit } = chart;
    const at = (w.since + share * (w.until - w.since) - w.t[0]) / w.step; // in buckets
    // The nearest bucket with a value within 4 px, so that a sliver can be read.
    const reach = (4 * values.length) / Math.max(1, box.width);
    let i = Math.min(values.length - 1, Math.floor(at));
    let best = Infinity;
    values.forEach((v, k) => {
      const distance = Math.abs(k + 0.5 - at);
      if (v !== null && v !== undefined && distance <= reach && distance < best) {
        best = distance;
        i = k;
      }
    });
    const value = values[i];
    const when = timeText(Math.max(w.since, w.t[i] || w.since), w.until - w.since);
    let text = `${when} no data`;
    if (value !== null && value !== undefined) {
      text = `${when} ${Math.round(value)}${unit}`;
      if (peaks !== values && peaks[i] !== null && peaks[i] !== undefined) {
        text = `${when} avg ${Math.round(value)}${unit}, max ${Math.round(peaks[i])}${unit}`;
      }
    }
    readout.textContent = text;
    readout.hidden = false;
    readout.classList.toggle("left", share > 0.5);
    cursor.setAttribute("x1", (W * share).toFixed(2));
    cursor.setAttribute("x2", (W * share).toFixed(2));
    cursor.setAttribute("visibility", "visible");
  }

  function hideReadout(figure) {
    figure.querySelector(".readout").hidden = true;
    figure.querySelector(".cursor").setAttribute("visibility", "hidden");
  }

  // Hover on any chart, including those of cards added later.
  document.addEventListener("pointermove", (event) => {
    const plot = event.target.closest && event.target.closest(".chart .plot");
    document.querySelectorAll(".chart .readout:not([hidden])").forEach((readout) => {
      if (!plot || readout.parentElement !== plot) hideReadout(readout.closest(".chart"));
    });
    if (plot) showReadout(plot.closest(".chart"), event);
  });

  // Ticks are placed for the axis's width: place them again when it changes.
  let resizing = false;
  window.addEventListener("resize", () => {
    if (resizing) return;
    resizing = true;
    requestAnimationFrame(() => {
      resizing = false;
      document.querySelectorAll(".chart").forEach((figure) => {
        if (!figure.chart) return;
        drawGaps(figure, figure.chart.w, figure.chart.values);
        drawAxis(figure, figure.chart.w);
      });
    });
  });

  function eventText(e) {
    const when = new Date(e.timestamp).toLocaleString([], { month: "short", day: "numeric", ...hhmm });
    const what = e.kind === "xid" ? `XID ${e.xid}` : e.kind.replaceAll("_", " ");
    return `${when} ${what}${e.message && e.kind !== "xid" ? `: ${e.message}` : ""}`;
  }

  function fillEvents(list, events) {
    if (!list) return;
    list.replaceChildren(...events.slice(0, 5).map((e) => {
      const li = document.createElement("li");
      li.textContent = eventText(e);
      li.title = li.textContent;
      if (BAD_EVENTS.has(e.kind)) li.className = "bad";
      return li;
    }));
  }

  // One badge per XID code seen in the last 24 hours, with how often and when.
  function fillXids(card, xids) {
    const byCode = new Map();
    xids.forEach((e) => byCode.set(e.xid, [...(byCode.get(e.xid) || []), e]));
    card.querySelector('[data-field="xids"]').replaceChildren(...Array.from(byCode, ([code, list]) => {
      const times = list.map((e) => new Date(e.timestamp).toLocaleString([], hhmm)).join(", ");
      return badge(list.length > 1 ? `XID ${code} ×${list.length}` : `XID ${code}`,
        `XID ${code} in the last 24 h: ${times}`, "xid");
    }));
  }

  const column = (series, name) => series[`${name}_max`] || series[name];

  async function refreshHistory(force) {
    if (!config.history || (!force && Date.now() - historyFetched < HISTORY_EVERY_MS)) return;
    historyFetched = Date.now();
    const host = config.host === undefined ? "" : `&host=${encodeURIComponent(config.host)}`;
    const query = `since=${encodeURIComponent(historyWindow)}${host}`;
    const [history, events, xids] = await Promise.all([
      getJSON(`${config.history}?${query}&points=360`), // 1 h: 10 s buckets, the default tick
      getJSON(`${config.events}?${query}&page_size=200`),
      getJSON(`${config.events}?kind=xid&since=-24h&page_size=1000${host}`),
    ]);
    const since = Date.parse(history.since) / 1000;
    const until = Date.parse(history.until) / 1000;
    const step = history.step_seconds;
    document.querySelectorAll("#cards .card").forEach((card) => {
      const series = history.series.find((s) => s.gpu_uuid === card.dataset.uuid);
      const t = series ? series.t : [Math.floor(since / step) * step];
      const w = { since, until, step, t, x: (epoch) => (W * (epoch - since)) / (until - since) };
      const none = t.map(() => null);
      const memory = series ? series.used_memory_mb.map((used, i) => {
        const total = series.total_memory_mb[i];
        return used === null || !total ? null : (100 * used) / total;
      }) : none;
      const utilization = series ? series.utilization_percent : none;
      const temperature = series ? series.temperature_c : none;
      drawChart(card, "utilization", w, utilization, series ? column(series, "utilization_percent") : none);
      drawChart(card, "memory", w, memory, memory); // used_memory_mb is each bucket's maximum
      drawChart(card, "temperature", w, temperature, series ? column(series, "temperature_c") : none);
      // Events by this GPU's UUID, and by its index alone (recorded while it was lost
      // before its UUID could be read): both belong to the card.
      const mine = (e) => (e.gpu_uuid ? e.gpu_uuid === card.dataset.uuid
        : e.gpu_index !== null && String(e.gpu_index) === card.dataset.index);
      fillEvents(card.querySelector('[data-field="events"]'), events.results.filter(mine));
      fillXids(card, xids.results.filter(mine));
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
      render(await getJSON(config.dashboard));
      await refreshHistory(false);
      lastSuccess = new Date();
      $("updated").textContent = `Updated ${lastSuccess.toLocaleTimeString([], hhmmss)}`;
      $("api-error").hidden = true;
    } catch (error) {
      const since = lastSuccess ? lastSuccess.toLocaleTimeString([], hhmmss) : "page load";
      $("api-error").textContent = `Cannot reach the GPU API (${error.message}); showing data from ${since}.`;
      $("api-error").hidden = false;
    } finally {
      setTimeout(refresh, config.interval * 1000);
    }
  }

  refresh();
})();
