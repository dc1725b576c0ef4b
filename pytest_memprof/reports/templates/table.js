// memprof allocation table: sort by a column header, filter by text, click a row for its stack.
// Strings from the capture are set with textContent only.
(function () {
  "use strict";

  var data = JSON.parse(document.getElementById("memprof-data").textContent);
  var strings = data.strings;
  var LIMIT = 1000;  // rows drawn at once; the filter narrows the rest

  function formatBytes(bytes) {
    var units = ["B", "KiB", "MiB", "GiB", "TiB"];
    var value = bytes;
    var unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit++;
    }
    return (unit === 0 ? value.toFixed(0) : value.toFixed(1)) + " " + units[unit];
  }

  function frameText(frame) {
    return strings[data.frames[4 * frame]] + " at " + strings[data.frames[4 * frame + 1]] + ":" +
      data.frames[4 * frame + 2];
  }

  // The frame's source line, read when the report was made ("" if unknown or confidential).
  function frameSource(frame) {
    var source = data.sources ? data.sources[frame] : -1;
    return source >= 0 ? strings[source] : "";
  }

  function stackOf(node) {
    var frames = [];
    for (var at = node; at > 0; at = data.nodes[2 * (at - 1)]) {
      frames.push(data.nodes[2 * (at - 1) + 1]);
    }
    return frames.reverse();
  }

  var total = 0;
  var rows = [];
  for (var i = 0; i < data.rows.length; i += 5) {
    var node = data.rows[i];
    var thread = data.threads[data.rows[i + 1]];
    var row = {
      node: node,
      location: node > 0 ? frameText(data.nodes[2 * (node - 1) + 1]) : "(no Python stack)",
      source: node > 0 ? frameSource(data.nodes[2 * (node - 1) + 1]) : "",
      // Thread id 0: threads merged (the default, as memray's table).
      thread: thread[0] === 0 ? "all threads" : (thread[1] || "thread") + " (" + thread[0] + ")",
      allocator: data.allocators[data.rows[i + 2]],
      bytes: data.rows[i + 3],
      count: data.rows[i + 4]
    };
    total += row.bytes;
    row.search = (row.location + " " + row.thread + " " + row.allocator).toLowerCase();
    rows.push(row);
  }
  rows.forEach(function (row) {
    row.share = total > 0 ? row.bytes / total : 0;
  });

  var body = document.querySelector("#allocations tbody");
  var headers = Array.from(document.querySelectorAll("#allocations th"));
  var filter = document.getElementById("filter");
  var shown = document.getElementById("shown");
  var sortKey = "bytes";
  var descending = true;

  function cell(tr, text, className) {
    var td = document.createElement("td");
    td.textContent = text;
    if (className) {
      td.className = className;
    }
    tr.appendChild(td);
    return td;
  }

  function toggleStack(tr, row) {
    var next = tr.nextElementSibling;
    if (next && next.classList.contains("stack")) {
      next.remove();
      return;
    }
    var stackRow = document.createElement("tr");
    stackRow.className = "stack";
    var td = document.createElement("td");
    td.colSpan = 6;
    var list = document.createElement("ol");
    stackOf(row.node).forEach(function (frame) {
      var item = document.createElement("li");
      item.textContent = frameText(frame);
      var source = frameSource(frame);
      if (source) {
        var code = document.createElement("code");
        code.className = "source";
        code.textContent = source;
        item.appendChild(code);
      }
      list.appendChild(item);
    });
    td.appendChild(list);
    stackRow.appendChild(td);
    tr.after(stackRow);
  }

  function draw() {
    var query = filter.value.trim().toLowerCase();
    var matching = rows.filter(function (row) {
      return !query || row.search.indexOf(query) >= 0;
    });
    matching.sort(function (a, b) {
      var x = a[sortKey];
      var y = b[sortKey];
      var order = typeof x === "string" ? x.localeCompare(y) : x - y;
      return descending ? -order : order;
    });
    var fragment = document.createDocumentFragment();
    matching.slice(0, LIMIT).forEach(function (row) {
      var tr = document.createElement("tr");
      tr.className = "row";
      var location = cell(tr, row.location, "text location");
      if (row.source) {
        location.title = row.source;  // the browser's own tooltip: the allocating line
      }
      cell(tr, row.thread, "text");
      cell(tr, formatBytes(row.bytes));
      cell(tr, (100 * row.share).toFixed(1) + "%");
      cell(tr, row.count.toLocaleString("en-US"));
      cell(tr, row.allocator, "text");
      tr.addEventListener("click", function () {
        toggleStack(tr, row);
      });
      fragment.appendChild(tr);
    });
    body.replaceChildren(fragment);
    shown.textContent = (matching.length > LIMIT ? "first " + LIMIT + " of " : "") + matching.length + " of " +
      rows.length + " rows shown";
    headers.forEach(function (th) {
      if (th.dataset.key === sortKey) {
        th.setAttribute("aria-sort", descending ? "descending" : "ascending");
      } else {
        th.removeAttribute("aria-sort");
      }
    });
  }

  headers.forEach(function (th) {
    th.addEventListener("click", function () {
      if (sortKey === th.dataset.key) {
        descending = !descending;
      } else {
        sortKey = th.dataset.key;
        descending = !th.classList.contains("text");
      }
      draw();
    });
  });
  filter.addEventListener("input", draw);
  draw();
})();
