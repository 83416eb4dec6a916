// The history's panel of the dashboard (and of a fleet host's page): each card's charts
// of utilisation, memory and temperature over the chosen window, its last events and a
// badge per XID of the last 24 hours; the host's own events under the window buttons.
// Read from GET history and GET events (the page's host: config.host), every 15 s with
// the page's refresh ("gpu-monitor:data", from dashboard.js) and at once on a window
// button. A slow answer for a window the viewer has left is dropped (page.js's
// generation token); a failure is said in the panel, not in the page's banner.
// Charts are inline SVG: each bucket drawn where it falls in the window (x from its
// time), a gap wherever a bucket has no sample, a time axis in local time, a read-out
// on hover.
(function () {
  "use strict";
  const page = window.gpuMonitor;
  const { $, hhmm } = page;
  const config = page.embedded("gpu-monitor-history"); // history.panel.context()
  const host = page.embedded("gpu-monitor-config").host; // the page's host
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
  const buttons = document.querySelectorAll("#history-panel [data-window]");
  let historyWindow = (document.querySelector('#history-panel [aria-pressed="true"]') || buttons[0]).dataset.window;
  let historyFetched = 0;
  let last = null; // the last answers drawn, for a card added since

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
      const prior = found[found.length - 1];
      if (prior && prior[1] === i - 1) prior[1] = i; else found.push([i, i]);
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
      const gap = page.element("span", "nodata");
      gap.style.left = `${(100 * (a - w.since)) / span}%`;
      gap.style.width = `${(100 * (b - a)) / span}%`;
      gap.append(page.element("span", "", "no data"));
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
        const tick = page.element("span", "", label);
        tick.dataset.t = String(epoch);
        tick.style.left = `${(100 * (epoch - w.since)) / span}%`;
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

  // A bad event that a later one ended (nvml_unavailable then nvml_available, gpu_lost
  // then gpu_recovered of the same GPU) is the past: listed, not red. ``events``: newest first.
  const ENDED_BY = { nvml_unavailable: "nvml_available", gpu_lost: "gpu_recovered" };
  const superseded = (e, i, events) => ENDED_BY[e.kind] !== undefined && events.slice(0, i)
    .some((later) => later.kind === ENDED_BY[e.kind] && later.gpu_index === e.gpu_index);

  function fillEvents(list, events) {
    if (!list) return;
    list.replaceChildren(...events.slice(0, 5).map((e, i) => {
      const bad = BAD_EVENTS.has(e.kind) && !superseded(e, i, events);
      const li = page.element("li", bad ? "bad" : "", eventText(e));
      li.title = li.textContent;
      return li;
    }));
  }

  // One badge per XID code seen in the last 24 hours, with how often and when.
  function fillXids(card, xids) {
    const byCode = new Map();
    xids.forEach((e) => byCode.set(e.xid, [...(byCode.get(e.xid) || []), e]));
    card.querySelector('[data-field="xids"]').replaceChildren(...Array.from(byCode, ([code, list]) => {
      const times = list.map((e) => new Date(e.timestamp).toLocaleString([], hhmm)).join(", ");
      return page.badge(list.length > 1 ? `XID ${code} ×${list.length}` : `XID ${code}`,
        `XID ${code} in the last 24 h: ${times}`, "xid");
    }));
  }

  const column = (series, name) => series[`${name}_max`] || series[name];

  function drawCard(card, { history, events, xids }) {
    const since = Date.parse(history.since) / 1000;
    const until = Date.parse(history.until) / 1000;
    const step = history.step_seconds;
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
    card.historyDrawn = true;
  }

  function draw(answers) {
    last = answers;
    document.querySelectorAll("#cards .card").forEach((card) => drawCard(card, answers));
    fillEvents($("host-events"), answers.events.results.filter((e) => e.gpu_index === null));
  }

  async function load() {
    const hostQuery = host === undefined ? "" : `&host=${encodeURIComponent(host)}`;
    const query = `since=${encodeURIComponent(historyWindow)}${hostQuery}`;
    const [history, events, xids] = await Promise.all([
      page.getJSON(`${config.history}?${query}&points=360`), // 1 h: 10 s buckets, the default tick
      page.getJSON(`${config.events}?${query}&page_size=200`),
      page.getJSON(`${config.events}?kind=xid&since=-24h&page_size=1000${hostQuery}`),
    ]);
    return { history, events, xids };
  }

  const history = page.refresher({
    load,
    draw,
    banner: page.banner($("history-error")),
    what: "Cannot read the GPU history",
  });

  function refresh() {
    historyFetched = Date.now();
    history.run();
  }

  buttons.forEach((button) => {
    button.addEventListener("click", () => {
      historyWindow = button.dataset.window;
      buttons.forEach((b) => b.setAttribute("aria-pressed", String(b === button)));
      refresh();
    });
  });

  // With the page's refresh: every 15 s, and a card added since is drawn at once.
  document.addEventListener("gpu-monitor:data", () => {
    if (Date.now() - historyFetched >= HISTORY_EVERY_MS) {
      refresh();
    } else if (last) {
      document.querySelectorAll("#cards .card").forEach((card) => {
        if (!card.historyDrawn) drawCard(card, last);
      });
    }
  });
  refresh();
})();
