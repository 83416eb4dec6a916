// Refreshes the GPU cards in place from the dashboard's own JSON (the page with
// Accept: application/json): no page reload, no flicker. Each refresh's data is
// announced as a "gpu-monitor:data" event, after the cards are drawn, for the panels
// of the sub-apps (the history's charts) and the pages that extend this one.
(function () {
  "use strict";
  const { $, setText, clamp, na, memoryPercent, memoryText, powerText } = window.gpuMonitor;
  const page = window.gpuMonitor;
  const config = page.embedded("gpu-monitor-config");
  const HIGH_PERCENT = config.high_percent; // gpu_monitor/rules.py: one definition
  const HOT_TEMPERATURE_C = config.hot_temperature_c;

  const field = (card, name) => card.querySelector(`[data-field="${name}"]`);

  function setBar(card, name, percent, high) {
    const bar = card.querySelector(`[data-bar="${name}"]`);
    bar.style.width = `${clamp(percent || 0)}%`;
    bar.classList.toggle("high", Boolean(high));
  }

  function fill(card, d) {
    card.dataset.index = d.index;
    card.dataset.uuid = d.uuid || "";
    card.classList.toggle("unavailable", !d.is_available);
    setText(field(card, "index"), String(d.index));
    setText(field(card, "name"), d.name);
    field(card, "error").hidden = d.is_available;
    card.querySelector(".metrics").hidden = !d.is_available;
    setText(field(card, "error_message"), d.error_message || "");
    fillProblems(card, d.problems || []);
    if (!d.is_available) return;
    const memory = memoryPercent(d.used_memory_mb, d.total_memory_mb);
    setText(field(card, "memory"), memoryText(d.used_memory_mb, d.total_memory_mb));
    setBar(card, "memory", memory, memory !== null && memory >= HIGH_PERCENT);
    setText(field(card, "utilization"), na(d.utilization_percent, "%"));
    const why = d.utilization_percent === null ? (d.field_errors || {}).utilization_percent || "" : "";
    field(card, "utilization").title = why;
    setText(field(card, "utilization_why"), `N/A: ${why}`);
    field(card, "utilization_why").hidden = !why;
    setBar(card, "utilization", d.utilization_percent, d.utilization_percent >= HIGH_PERCENT);
    setText(field(card, "temperature"), na(d.temperature_c, " °C"));
    setBar(card, "temperature", d.temperature_c, d.temperature_c >= HOT_TEMPERATURE_C);
    setText(field(card, "power"), powerText(d.power_draw_w, d.power_limit_w));
    setText(field(card, "performance_state"), d.performance_state || "N/A");
    fillMIG(card, d.mig_devices || []);
  }

  // Signs of failing hardware, as the server's rule (gpu_monitor/rules.py) found them.
  function fillProblems(card, problems) {
    card.classList.toggle("problem", problems.length > 0);
    field(card, "problems").replaceChildren(...problems.map((p) => page.badge(p.badge, p.message, p.kind)));
  }

  function fillMIG(card, migs) {
    card.querySelector(".mig").hidden = !migs.length;
    field(card, "mig").replaceChildren(...migs.map((m) => {
      const li = page.element("li");
      li.title = m.uuid || "";
      const memory = m.used_memory_mb === null || !m.total_memory_mb ? "N/A"
        : `${m.used_memory_mb} / ${m.total_memory_mb} MiB`;
      li.append(
        page.element("span", "who", (m.name || "MIG device").split("MIG ").pop()),
        page.element("span", "used", memory),
      );
      return li;
    }));
  }

  function fillProcesses(card, d, processes) {
    const list = field(card, "processes");
    if (!list || !processes) return;
    const mine = processes.processes.filter((p) => p.gpu_index === d.index);
    const items = mine.map((p) => {
      const li = page.element("li");
      const who = page.element("span", "who");
      who.append(page.element("span", "pid", String(p.pid)), ` ${p.username || "?"} · ${p.name || "?"}`);
      const bar = page.element("div", "bar thin");
      bar.setAttribute("role", "meter");
      bar.setAttribute("aria-label", `GPU memory of process ${p.pid}`);
      const fillBar = page.element("div", "fill");
      const share = d.total_memory_mb && p.used_memory_mb ? (100 * p.used_memory_mb) / d.total_memory_mb : 0;
      fillBar.style.width = `${clamp(share)}%`;
      bar.append(fillBar);
      li.append(who, page.element("span", "used", na(p.used_memory_mb, " MiB")), bar);
      return li;
    });
    if (!items.length) items.push(page.element("li", "none", "No processes"));
    list.replaceChildren(...items);
  }

  function render(data) {
    const { status, driver, processes } = data;
    const cards = $("cards");
    const seen = new Set();
    data.devices.forEach((d, position) => {
      let card = cards.querySelector(`[data-index="${d.index}"]`);
      if (!card) card = $("card-template").content.firstElementChild.cloneNode(true);
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

  page.refresher({
    load: () => page.getJSON(config.dashboard),
    draw: render,
    every: config.interval * 1000,
    banner: page.banner($("api-error")),
    what: "Cannot reach the GPU API",
    drawn: page.updated,
  }).run();
})();
