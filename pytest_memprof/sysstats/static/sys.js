// memprof sys page: polls /api/4/all and /api/4/all/views, draws the history from /api/4/<plugin>/history.
// Every value is written with textContent (never as HTML): process names and command lines come from
// any user of the machine.
"use strict";

(function () {
  const interval = Math.max(200, parseInt(document.body.dataset.intervalMs, 10) || 2000);
  const HISTORY_POINTS = 120;
  let refreshes = 0;
  let latest = {};
  let views = {};
  let sortKey = "cpu_percent";
  let sortDescending = true;
  let filter = null;

  function bytes(value) {
    if (typeof value !== "number") return "N/A";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let size = value, unit = 0;
    while (Math.abs(size) >= 1024 && unit < units.length - 1) { size /= 1024; unit += 1; }
    return (unit === 0 ? size.toFixed(0) : size.toFixed(1)) + " " + units[unit];
  }
  function rate(value) { return typeof value === "number" ? bytes(value) + "/s" : "N/A"; }
  function percent(value) { return typeof value === "number" ? value.toFixed(1) + "%" : "N/A"; }
  function number(value) { return typeof value === "number" ? String(value) : "N/A"; }

  function decoration(plugin, field, key) {
    const view = views[plugin] || {};
    const entry = key === undefined ? view[field] : (view[String(key)] || {})[field];
    return entry && entry.decoration ? entry.decoration.replace("_LOG", "") : "DEFAULT";
  }

  function show(id, text, deco) {
    const element = document.getElementById(id);
    if (!element) return;
    element.textContent = text;
    if (deco !== undefined) element.className = "deco-" + deco;
  }

  function bar(id, value, deco) {
    const element = document.getElementById(id);
    if (!element || typeof value !== "number") return;
    element.style.width = Math.max(0, Math.min(100, value)) + "%";
    element.className = "deco-" + (deco || "DEFAULT");
  }

  function fillTable(id, rows) {
    const body = document.querySelector("#" + id + " tbody");
    const elements = rows.map(function (cells) {
      const row = document.createElement("tr");
      cells.forEach(function (cell) {
        const td = document.createElement("td");
        td.textContent = cell.text;
        td.className = (cell.num ? "num " : "") + (cell.deco ? "deco-" + cell.deco : "") + (cell.cls ? " " + cell.cls : "");
        if (cell.title) td.title = cell.title;
        row.appendChild(td);
      });
      return row;
    });
    body.replaceChildren.apply(body, elements);
  }

  function cpuTime(process) {
    const times = process.cpu_times || {};
    return (times.user || 0) + (times.system || 0);
  }
  function clock(seconds) {
    const minutes = Math.floor(seconds / 60);
    return minutes + ":" + (seconds - 60 * minutes).toFixed(2).padStart(5, "0");
  }

  const SORTS = {
    cpu_percent: function (p) { return p.cpu_percent || 0; },
    memory_percent: function (p) { return p.memory_percent || 0; },
    rss: function (p) { return (p.memory_info || {}).rss || 0; },
    pid: function (p) { return p.pid || 0; },
    username: function (p) { return String(p.username || ""); },
    status: function (p) { return String(p.status || ""); },
    cpu_times: cpuTime,
    name: function (p) { return String(p.name || "").toLowerCase(); },
  };

  function processes(list) {
    let shown = (Array.isArray(list) ? list : []).filter(function (p) {
      if (!filter) return true;
      return filter.test((p.name || "") + " " + (Array.isArray(p.cmdline) ? p.cmdline.join(" ") : ""));
    });
    const key = SORTS[sortKey];
    shown.sort(function (a, b) {
      const x = key(a), y = key(b);
      const order = x < y ? -1 : x > y ? 1 : 0;
      return sortDescending ? -order : order;
    });
    show("process-count", String(shown.length));
    fillTable("processes", shown.map(function (p) {
      const memory = p.memory_info || {};
      const command = Array.isArray(p.cmdline) && p.cmdline.length ? p.cmdline.join(" ") : "[" + (p.name || "?") + "]";
      return [
        { text: percent(p.cpu_percent), num: true, deco: decoration("processlist", "cpu_percent", p.pid) },
        { text: percent(p.memory_percent), num: true, deco: decoration("processlist", "memory_percent", p.pid) },
        { text: bytes(memory.rss), num: true }, { text: number(p.pid), num: true },
        { text: String(p.username || "") }, { text: String(p.status || "") },
        { text: clock(cpuTime(p)), num: true }, { text: String(p.name || "") },
        { text: command, cls: "cmd", title: command },
      ];
    }));
    document.querySelectorAll("#processes th[data-sort]").forEach(function (th) {
      th.classList.toggle("sorted", th.dataset.sort === sortKey);
      th.dataset.order = th.dataset.sort === sortKey ? (sortDescending ? "desc" : "asc") : "";
    });
  }

  function render(stats) {
    latest = stats;
    const system = stats.system || {}, cpu = stats.cpu || {}, mem = stats.mem || {};
    const swap = stats.memswap || {}, load = stats.load || {}, count = stats.processcount || {};
    const quick = stats.quicklook || {};
    show("hostname", system.hostname || "");
    show("hr_name", system.hr_name || "");
    show("uptime", stats.uptime || "N/A");
    show("now", stats.now && stats.now.iso ? stats.now.iso : "N/A");
    show("tasks", number(count.total) + " tasks, " + number(count.thread) + " threads, " +
         number(count.running) + " running, " + number(count.sleeping) + " sleeping");
    show("quicklook-cpu_name", quick.cpu_name || "");
    ["cpu", "mem", "swap", "load"].forEach(function (name) {
      const deco = decoration("quicklook", name);
      show("quicklook-" + name, percent(quick[name]), deco);
      bar("quicklook-" + name + "-bar", quick[name], deco);
    });
    fillTable2("percpu", quick.percpu);
    show("cpu-total", percent(cpu.total), decoration("cpu", "total"));
    ["user", "system", "iowait", "steal"].forEach(function (name) {
      show("cpu-" + name, percent(cpu[name]), decoration("cpu", name));
    });
    show("cpu-ctx_switches_rate_per_sec", number(cpu.ctx_switches_rate_per_sec));
    show("cpu-cpucore", number(cpu.cpucore));
    bar("cpu-bar", cpu.total, decoration("cpu", "total"));
    show("mem-percent", percent(mem.percent), decoration("mem", "percent"));
    ["used", "available", "total", "cached", "buffers"].forEach(function (name) { show("mem-" + name, bytes(mem[name])); });
    bar("mem-bar", mem.percent, decoration("mem", "percent"));
    show("memswap-percent", swap.total ? percent(swap.percent) : "none", decoration("memswap", "percent"));
    ["used", "free", "total"].forEach(function (name) { show("memswap-" + name, bytes(swap[name])); });
    bar("memswap-bar", swap.percent, decoration("memswap", "percent"));
    ["min1", "min5", "min15"].forEach(function (name) { show("load-" + name, number(load[name]), decoration("load", name)); });
    show("load-cpucore", number(load.cpucore) + " cores");
    show("processcount-total", number(count.total));
    show("processcount-thread", number(count.thread));
    fillTable("network", (stats.network || []).map(function (n) {
      return [{ text: String(n.interface_name) },
              { text: rate(n.bytes_recv_rate_per_sec), num: true, deco: decoration("network", "bytes_recv_rate_per_sec", n.interface_name) },
              { text: rate(n.bytes_sent_rate_per_sec), num: true, deco: decoration("network", "bytes_sent_rate_per_sec", n.interface_name) }];
    }));
    fillTable("diskio", (stats.diskio || []).map(function (d) {
      return [{ text: String(d.disk_name) }, { text: rate(d.read_bytes_rate_per_sec), num: true },
              { text: rate(d.write_bytes_rate_per_sec), num: true }];
    }));
    fillTable("fs", (stats.fs || []).map(function (f) {
      const deco = decoration("fs", "percent", f.mnt_point);
      return [{ text: String(f.mnt_point), title: String(f.device_name) }, { text: bytes(f.used), num: true },
              { text: bytes(f.size), num: true }, { text: percent(f.percent), num: true, deco: deco }];
    }));
    const sensors = (stats.sensors || []).map(function (s) {
      return [{ text: String(s.label) }, { text: number(s.value) + " " + String(s.unit || ""), num: true,
                deco: decoration("sensors", "value", s.label) }];
    });
    fillTable("sensors", sensors.length ? sensors : [[{ text: "none on this machine" }, { text: "" }]]);
    const events = Array.isArray(stats.alert) ? stats.alert : [];
    show("alerts-summary", events.length ? String(events[0].global_msg || "") : "no warning or critical alert");
    fillTable("alerts", events.map(function (e) {
      return [{ text: new Date(e.begin * 1000).toLocaleTimeString() },
              { text: e.end === -1 ? "ongoing" : new Date(e.end * 1000).toLocaleTimeString() },
              { text: String(e.state), deco: String(e.state) }, { text: String(e.type) },
              { text: number(e.min), num: true }, { text: number(e.avg), num: true }, { text: number(e.max), num: true },
              { text: Array.isArray(e.top) ? e.top.join(", ") : "" }];
    }));
    processes(stats.processlist);
  }

  function fillTable2(id, percpu) {
    const holder = document.getElementById(id);
    const elements = (Array.isArray(percpu) ? percpu : []).map(function (entry) {
      const item = document.createElement("span");
      item.textContent = "cpu" + entry.cpu_number + " " + percent(entry.total);
      item.className = "deco-" + decoration("quicklook", "cpu");
      return item;
    });
    holder.replaceChildren.apply(holder, elements);
  }

  function polyline(id, points, scale) {
    const element = document.getElementById(id);
    const tail = (Array.isArray(points) ? points : []).slice(-HISTORY_POINTS);
    const coordinates = tail.map(function (point, index) {
      const value = Math.max(0, Math.min(100, (point[1] || 0) * (scale || 1)));
      return (index * 600 / (HISTORY_POINTS - 1)).toFixed(1) + "," + (100 - value).toFixed(1);
    });
    element.setAttribute("points", coordinates.join(" "));
    return tail.length;
  }

  function json(path) {
    return fetch(path, { cache: "no-store", credentials: "same-origin" }).then(function (response) {
      if (!response.ok) throw new Error("HTTP " + response.status + " for " + path);
      return response.json();
    });
  }

  function history() {
    return Promise.all([json("/api/4/mem/history/" + HISTORY_POINTS), json("/api/4/cpu/history/" + HISTORY_POINTS),
                        json("/api/4/load/history/" + HISTORY_POINTS)]).then(function (series) {
      const length = polyline("history-mem", series[0].percent);
      polyline("history-cpu", series[1].total);
      const cores = (latest.load || {}).cpucore || 1;
      polyline("history-load", series[2].min1, 100 / cores);
      show("history-length", String(length));
    });
  }

  function problem(text) {
    const element = document.getElementById("problem");
    element.textContent = text;
    element.hidden = !text;
  }

  function refresh() {
    Promise.all([json("/api/4/all"), json("/api/4/all/views")])
      .then(function (answers) {
        views = answers[1] || {};
        render(answers[0]);
        refreshes += 1;
        show("refreshes", String(refreshes));
        problem("");
        return history();
      })
      .catch(function (error) { problem("server not answering (" + error.message + "); retrying"); })
      .finally(function () { setTimeout(refresh, interval); });
  }

  document.querySelectorAll("#processes th[data-sort]").forEach(function (th) {
    th.addEventListener("click", function () {
      if (sortKey === th.dataset.sort) sortDescending = !sortDescending;
      else { sortKey = th.dataset.sort; sortDescending = !["name", "username", "status", "pid"].includes(sortKey); }
      processes(latest.processlist);
    });
  });
  document.getElementById("process-filter").addEventListener("input", function (event) {
    const text = event.target.value.trim();
    const note = document.getElementById("filter-problem");
    try {
      filter = text ? new RegExp(text) : null;
      note.hidden = true;
    } catch (error) {
      note.textContent = "not a regular expression";
      note.hidden = false;
      return;
    }
    processes(latest.processlist);
  });

  refresh();
})();
