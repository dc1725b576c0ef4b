// memprof sys page: polls /api/4/all and writes every value with textContent (never as HTML).
"use strict";

(function () {
  const interval = Math.max(200, parseInt(document.body.dataset.intervalMs, 10) || 2000);
  let refreshes = 0;
  const HISTORY = 120;
  const history = { mem: [], cpu: [] };

  function bytes(value) {
    if (typeof value !== "number") return "N/A";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let size = value, unit = 0;
    while (Math.abs(size) >= 1024 && unit < units.length - 1) { size /= 1024; unit += 1; }
    return (unit === 0 ? size.toFixed(0) : size.toFixed(1)) + " " + units[unit];
  }

  function percent(value) {
    return typeof value === "number" ? value.toFixed(1) + "%" : "N/A";
  }

  function number(value) {
    return typeof value === "number" ? String(value) : "N/A";
  }

  function show(id, text) {
    const element = document.getElementById(id);
    if (element) element.textContent = text;
  }

  function bar(id, value) {
    const element = document.getElementById(id);
    if (!element || typeof value !== "number") return;
    element.style.width = Math.max(0, Math.min(100, value)) + "%";
    element.className = value >= 90 ? "critical" : value >= 70 ? "high" : "";
  }

  function processes(list) {
    const body = document.querySelector("#processes tbody");
    const rows = (Array.isArray(list) ? list : []).map(function (process) {
      const row = document.createElement("tr");
      const memory = process.memory_info || {};
      const cells = [
        [number(process.pid), "num"], [process.name || "", ""], [process.username || "", ""],
        [bytes(memory.rss), "num"], [percent(process.memory_percent), "num"],
        [percent(process.cpu_percent), "num"],
        [Array.isArray(process.cmdline) ? process.cmdline.join(" ") : "", "cmd"],
      ];
      cells.forEach(function (cell) {
        const td = document.createElement("td");
        td.textContent = cell[0];
        if (cell[1]) td.className = cell[1];
        if (cell[1] === "cmd") td.title = cell[0];
        row.appendChild(td);
      });
      return row;
    });
    body.replaceChildren.apply(body, rows);
  }

  function remember(name, value) {
    const series = history[name];
    series.push(typeof value === "number" ? Math.max(0, Math.min(100, value)) : null);
    if (series.length > HISTORY) series.shift();
    const points = [];
    series.forEach(function (point, index) {
      if (point !== null) points.push((index * 600 / (HISTORY - 1)).toFixed(1) + "," + (100 - point).toFixed(1));
    });
    document.getElementById("history-" + name).setAttribute("points", points.join(" "));
  }

  function render(stats) {
    const system = stats.system || {}, cpu = stats.cpu || {}, mem = stats.mem || {};
    const swap = stats.memswap || {}, load = stats.load || {}, count = stats.processcount || {};
    show("hostname", system.hostname || "");
    show("hr_name", system.hr_name || "");
    show("uptime", stats.uptime || "N/A");
    show("now", stats.now || "N/A");
    show("cpu-total", percent(cpu.total));
    ["user", "system", "iowait"].forEach(function (name) { show("cpu-" + name, percent(cpu[name])); });
    show("cpu-cpucore", number(cpu.cpucore));
    bar("cpu-bar", cpu.total);
    show("mem-percent", percent(mem.percent));
    ["used", "available", "total", "cached"].forEach(function (name) { show("mem-" + name, bytes(mem[name])); });
    bar("mem-bar", mem.percent);
    show("memswap-percent", swap.total ? percent(swap.percent) : "none");
    show("memswap-used", bytes(swap.used));
    show("memswap-total", bytes(swap.total));
    bar("memswap-bar", swap.percent);
    ["min1", "min5", "min15"].forEach(function (name) { show("load-" + name, number(load[name])); });
    show("processcount-total", number(count.total));
    processes(stats.processlist);
    remember("mem", mem.percent);
    remember("cpu", cpu.total);
    show("history-length", String(history.mem.length));
  }

  function problem(text) {
    const element = document.getElementById("problem");
    element.textContent = text;
    element.hidden = !text;
  }

  function refresh() {
    fetch("/api/4/all", { cache: "no-store", credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (stats) {
        render(stats);
        refreshes += 1;
        show("refreshes", String(refreshes));
        problem("");
      })
      .catch(function (error) {
        problem("server not answering (" + error.message + "); retrying");
      })
      .finally(function () { setTimeout(refresh, interval); });
  }

  refresh();
})();
