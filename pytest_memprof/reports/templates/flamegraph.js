// memprof flame graph: builds the view (thread, inverted, time range) from the call tree the
// report embeds, and draws it as absolutely positioned boxes. Every string from the capture
// reaches the page through textContent or an attribute value, never through HTML parsing.
(function () {
  "use strict";

  var data = JSON.parse(document.getElementById("memprof-data").textContent);
  var ROW = 18;
  var strings = data.strings;
  var frameCount = data.frames.length / 4;
  var nodeCount = data.nodes.length / 2 + 1;
  var parentOf = new Int32Array(nodeCount);
  var frameOf = new Int32Array(nodeCount);
  parentOf[0] = -1;
  frameOf[0] = -1;
  for (var n = 1; n < nodeCount; n++) {
    parentOf[n] = data.nodes[2 * (n - 1)];
    frameOf[n] = data.nodes[2 * (n - 1) + 1];
  }

  // Temporal rows arrive deflated and packed (see _pack_intervals in flamegraph.py); they are
  // unpacked once into flat [node, thread, allocated ms, freed ms or -1, bytes, count] rows.
  function inflate(base64) {
    var text = atob(base64);
    var packed = new Uint8Array(text.length);
    for (var i = 0; i < text.length; i++) {
      packed[i] = text.charCodeAt(i);
    }
    var stream = new Blob([packed]).stream().pipeThrough(new DecompressionStream("deflate"));
    return new Response(stream).arrayBuffer().then(function (buffer) {
      return new Uint8Array(buffer);
    });
  }

  function unpackIntervals(bytes, ticks, withThreads) {
    var position = 0;
    function next() {
      var value = 0;
      var scale = 1;
      var byte;
      do {
        byte = bytes[position++];
        value += (byte & 127) * scale;
        scale *= 128;
      } while (byte & 128);
      return value;
    }
    var rows = [];
    var node = 0;
    var thread = 0;
    var tick = 0;
    while (position < bytes.length) {
      var nodeDelta = next();
      var rowThread = withThreads ? next() : 0;
      if (nodeDelta !== 0 || rowThread !== thread) {
        tick = 0;
      }
      node += nodeDelta;
      thread = rowThread;
      tick += next();
      var lived = next();
      var sizeAndFlag = next();
      var count = sizeAndFlag % 2 ? next() : 1;
      rows.push(node, thread, ticks[tick], lived ? ticks[tick + lived - 1] : -1, Math.floor(sizeAndFlag / 2), count);
    }
    return rows;
  }

  var graph = document.getElementById("graph");
  var tooltip = document.getElementById("tooltip");
  var chart = document.getElementById("chart");
  var threadSelect = document.getElementById("thread");
  var invertedBox = document.getElementById("inverted");
  var splitBox = document.getElementById("split");
  var hideIrrelevantBox = document.getElementById("hide-irrelevant");
  var hideImportBox = document.getElementById("hide-import");
  var searchBox = document.getElementById("search");
  var matchesText = document.getElementById("matches");
  var crumbs = document.getElementById("crumbs");
  var zoomOutButton = document.getElementById("zoom-out");
  var resetButton = document.getElementById("reset");
  var clearRangeButton = document.getElementById("clear-range");
  var rangeText = document.getElementById("range-text");

  // A differential flame graph (flamegraph --diff) also carries the base capture's rows, in the
  // same call tree: frames are sized by one capture and coloured by the change from the base.
  var diff = !!data.base_samples;
  var sizeByBaseBox = document.getElementById("size-by-base");

  var state = {
    byBase: false,
    thread: -1,
    inverted: !!data.options.inverted,
    split: !!data.options.split_threads,
    range: null,
    zoom: [],
    query: "",
    hide: 0, // frame_flags bits of the frames left out of every stack (IMPORT_SYSTEM 1, IRRELEVANT 2)
    tree: null,
    boxes: []
  };

  var formatBytes = memprofChart.formatBytes;
  var formatSeconds = memprofChart.formatSeconds;

  function percent(part, whole) {
    return whole > 0 ? (100 * part / whole).toFixed(1) + "%" : "0%";
  }

  // Frame ids past the frame table stand for threads (the "split threads" level).
  function frameName(frame) {
    if (frame < 0) {
      return state.thread < 0 ? "all threads" : threadLabel(state.thread);
    }
    if (frame >= frameCount) {
      return threadLabel(frame - frameCount);
    }
    return strings[data.frames[4 * frame]];
  }

  function frameLocation(frame) {
    if (frame < 0 || frame >= frameCount) {
      return "";
    }
    return strings[data.frames[4 * frame + 1]] + ":" + data.frames[4 * frame + 2];
  }

  // The frame's source line, read when the report was made ("" if unknown or confidential).
  function frameSource(frame) {
    var source = frame >= 0 && frame < frameCount && data.sources ? data.sources[frame] : -1;
    return source >= 0 ? strings[source] : "";
  }

  function threadLabel(index) {
    var thread = data.threads[index];
    return (thread[1] ? thread[1] : "thread") + " (" + thread[0] + ")";
  }

  // Paths leave out the frames the "hide" toggles name; the cache holds paths for one setting.
  var frameFlags = data.frame_flags || [];
  var pathCache = new Map();
  function pathOf(node) {
    var path = pathCache.get(node);
    if (path) {
      return path;
    }
    path = [];
    for (var at = node; at > 0; at = parentOf[at]) {
      if (!(frameFlags[frameOf[at]] & state.hide)) {
        path.push(frameOf[at]);
      }
    }
    path.reverse();
    pathCache.set(node, path);
    return path;
  }

  // Rows of [node, thread, bytes, count] for the current time range (or the report's kind).
  function currentRows() {
    var rows = [];
    var i;
    if (state.range && data.intervals) {
      // The range is at ticks (snapRange): allocated in a tick in [start, end), not freed before end.
      var start = state.range[0];
      var end = state.range[1];
      var iv = data.intervals;
      for (i = 0; i < iv.length; i += 6) {
        var allocated = iv[i + 2];
        var freed = iv[i + 3];
        if (allocated >= start && allocated < end && (freed < 0 || freed >= end)) {
          rows.push([iv[i], iv[i + 1], iv[i + 4], iv[i + 5]]);
        }
      }
      return rows;
    }
    var s = data.samples;
    for (i = 0; i < s.length; i += 4) {
      rows.push([s[i], s[i + 1], s[i + 2], s[i + 3]]);
    }
    return rows;
  }

  function makeNode(frame, parent) {
    // bytes/count size the frame; other/otherCount are the other capture's (diff view only).
    return { frame: frame, bytes: 0, count: 0, other: 0, otherCount: 0, kids: new Map(), parent: parent,
      sorted: null };
  }

  function child(node, frame) {
    var kid = node.kids.get(frame);
    if (!kid) {
      kid = makeNode(frame, node);
      node.kids.set(frame, kid);
    }
    return kid;
  }

  function baseRows() {
    var rows = [];
    var s = data.base_samples;
    for (var i = 0; i < s.length; i += 4) {
      rows.push([s[i], s[i + 1], s[i + 2], s[i + 3]]);
    }
    return rows;
  }

  function buildTree() {
    var root = makeNode(-1, null);
    if (!diff) {
      addRows(root, currentRows(), true);
      return root;
    }
    addRows(root, state.byBase ? baseRows() : currentRows(), true);
    addRows(root, state.byBase ? currentRows() : baseRows(), false);
    return root;
  }

  // Adds rows to the tree: to the figures that size frames when `sizing`, else to the other ones.
  function addRows(root, rows, sizing) {
    function add(node, bytes, count) {
      if (sizing) {
        node.bytes += bytes;
        node.count += count;
      } else {
        node.other += bytes;
        node.otherCount += count;
      }
    }
    for (var r = 0; r < rows.length; r++) {
      var row = rows[r];
      if (state.thread >= 0 && row[1] !== state.thread) {
        continue;
      }
      var bytes = row[2];
      var count = row[3];
      var path = pathOf(row[0]);
      var at = root;
      add(at, bytes, count);
      if (state.split) {
        at = child(at, frameCount + row[1]);
        add(at, bytes, count);
      }
      var len = path.length;
      for (var i = 0; i < len; i++) {
        at = child(at, path[state.inverted ? len - 1 - i : i]);
        add(at, bytes, count);
      }
    }
  }

  // [new bytes, new count, base bytes, base count] of a node, whichever capture sizes the frames.
  function diffFigures(node) {
    return state.byBase ? [node.other, node.otherCount, node.bytes, node.count]
      : [node.bytes, node.count, node.other, node.otherCount];
  }

  // Red where a frame grew, blue where it shrank, deeper the larger the change is for that frame.
  function diffColour(node) {
    var figures = diffFigures(node);
    var change = figures[0] - figures[2];
    if (change === 0) {
      return "hsl(0, 0%, 85%)";
    }
    var ratio = Math.min(1, Math.abs(change) / Math.max(figures[0], figures[2]));
    var lightness = Math.round(86 - 34 * Math.sqrt(ratio));
    return change > 0 ? "hsl(0, 78%, " + lightness + "%)" : "hsl(218, 72%, " + lightness + "%)";
  }

  function sortedKids(node) {
    if (!node.sorted) {
      node.sorted = Array.from(node.kids.values()).sort(function (a, b) {
        return b.bytes - a.bytes || frameName(a.frame).localeCompare(frameName(b.frame));
      });
    }
    return node.sorted;
  }

  function zoomChain() {
    var chain = [state.tree];
    var at = state.tree;
    for (var i = 0; i < state.zoom.length; i++) {
      var kid = at.kids.get(state.zoom[i]);
      if (!kid) {
        break;
      }
      at = kid;
      chain.push(at);
    }
    return chain;
  }

  function framePathOf(node) {
    var path = [];
    for (var at = node; at && at.parent; at = at.parent) {
      path.push(at.frame);
    }
    return path.reverse();
  }

  function matches(node, query) {
    if (!query || node.frame < 0) {
      return false;
    }
    return frameName(node.frame).toLowerCase().indexOf(query) >= 0 ||
      frameLocation(node.frame).toLowerCase().indexOf(query) >= 0;
  }

  // Bytes of matching frames inside `node`, each allocation counted once even when a match
  // is nested in another (recursion, or two matching functions on one stack).
  function matchedBytes(node, query) {
    if (matches(node, query)) {
      return { bytes: node.bytes, frames: 1 + countMatches(node, query) };
    }
    var total = { bytes: 0, frames: 0 };
    node.kids.forEach(function (kid) {
      var sub = matchedBytes(kid, query);
      total.bytes += sub.bytes;
      total.frames += sub.frames;
    });
    return total;
  }

  function countMatches(node, query) {
    var found = 0;
    node.kids.forEach(function (kid) {
      found += (matches(kid, query) ? 1 : 0) + countMatches(kid, query);
    });
    return found;
  }

  function hue(text) {
    var hash = 0;
    for (var i = 0; i < text.length; i++) {
      hash = (hash * 31 + text.charCodeAt(i)) | 0;
    }
    return Math.abs(hash);
  }

  function colour(frame) {
    var h = hue(frameName(frame) + frameLocation(frame));
    if (frame < frameCount && data.frames[4 * frame + 3]) {
      return "hsl(" + (190 + h % 40) + ", 55%, " + (68 + h % 12) + "%)";
    }
    return "hsl(" + (h % 50) + ", 78%, " + (62 + (h >> 8) % 14) + "%)";
  }

  function render() {
    var width = graph.clientWidth || 1000;
    var chain = zoomChain();
    var focus = chain[chain.length - 1];
    var boxes = [];
    var i;
    for (i = 0; i < chain.length; i++) {
      boxes.push({ node: chain[i], x: 0, w: width, depth: i, ancestor: i < chain.length - 1 });
    }
    var maxDepth = chain.length - 1;
    var scale = focus.bytes > 0 ? width / focus.bytes : 0;
    // Boxes narrower than SMALL_PX are slivers that cannot be read or aimed at (deep ones make
    // tall columns of them): the rest of a node's children, smallest last, go into one
    // "N small stacks" box instead. Search totals come from the tree, not from boxes.
    var stack = [[focus, 0, chain.length]];
    while (stack.length) {
      var item = stack.pop();
      var x = item[1];
      var kids = sortedKids(item[0]);
      for (i = 0; i < kids.length; i++) {
        var w = kids[i].bytes * scale;
        if (w < SMALL_PX) {
          var small = smallStacks(item[0], kids.slice(i));
          if (small.bytes * scale >= 1) {
            boxes.push({ node: small, x: x, w: small.bytes * scale, depth: item[2], ancestor: false });
            maxDepth = Math.max(maxDepth, item[2]);
          }
          break;
        }
        boxes.push({ node: kids[i], x: x, w: w, depth: item[2], ancestor: false });
        if (item[2] > maxDepth) {
          maxDepth = item[2];
        }
        stack.push([kids[i], x, item[2] + 1]);
        x += w;
      }
    }
    state.boxes = boxes;
    var query = state.query;
    var height = (maxDepth + 1) * ROW;
    graph.style.height = height + "px";
    graph.classList.toggle("searching", !!query);
    var fragment = document.createDocumentFragment();
    for (i = 0; i < boxes.length; i++) {
      var box = boxes[i];
      var div = document.createElement("div");
      var frame = box.node.frame;
      div.className = "frame" + (box.ancestor ? " ancestor" : "") + (box.node.small ? " small" :
        frame < 0 ? " root" : "") +
        (frame >= frameCount ? " thread" : "") + (matches(box.node, query) ? " match" : "");
      div.dataset.box = String(i);
      div.style.left = box.x + "px";
      div.style.width = box.w + "px";
      div.style.top = (state.inverted ? box.depth * ROW : height - (box.depth + 1) * ROW) + "px";
      if (frame >= 0 && frame < frameCount) {
        div.style.background = diff ? diffColour(box.node) : colour(frame);
      }
      if (box.w > 24) {
        div.textContent = box.node.small ? smallLabel(box.node) :
          frame < 0 ? frameName(frame) + " (" + formatBytes(box.node.bytes) + ")" : frameName(frame);
      }
      fragment.appendChild(div);
    }
    graph.replaceChildren(fragment);
    zoomOutButton.disabled = chain.length < 2;
    resetButton.disabled = chain.length < 2;
    crumbs.textContent = chain.length > 1
      ? "Zoomed into: " + chain.slice(1).map(function (node) { return frameName(node.frame); }).join(" \u203a ")
      : "";
    renderMatches();
  }

  function renderMatches() {
    if (!state.query) {
      matchesText.textContent = "";
      return;
    }
    var found = matchedBytes(state.tree, state.query);
    matchesText.textContent = found.frames
      ? found.frames + " matching frame(s): " + formatBytes(found.bytes) + " (" +
        percent(found.bytes, state.tree.bytes) + " of the total)"
      : "no match";
  }

  function rebuild() {
    state.tree = buildTree();
    render();
  }

  var SMALL_PX = 3;
  var SMALL_FRAME = -2; // not a frame: a box of several small stacks, a leaf whose zoom is its caller's

  function smallStacks(parent, kids) {
    var node = makeNode(SMALL_FRAME, parent);
    node.small = kids.length;
    kids.forEach(function (kid) {
      node.bytes += kid.bytes;
      node.count += kid.count;
    });
    return node;
  }

  function smallLabel(node) {
    return node.small + " small stack" + (node.small === 1 ? "" : "s") + " (" + formatBytes(node.bytes) + ")";
  }

  // The "hide" toggles: the irrelevant frames (pytest's, pluggy's, runpy's, ours) are hidden by default.
  function readHidden() {
    state.hide = (hideImportBox && hideImportBox.checked ? 1 : 0) |
      (hideIrrelevantBox && hideIrrelevantBox.checked ? 2 : 0);
    pathCache = new Map();
  }
  [hideImportBox, hideIrrelevantBox].forEach(function (box) {
    if (box) {
      box.addEventListener("change", function () {
        readHidden();
        state.zoom = [];
        rebuild();
      });
    }
  });
  readHidden();

  function showTooltip(event, box) {
    var node = box.node;
    var frame = node.frame;
    tooltip.replaceChildren();
    var lines = [
      [node.small ? smallLabel(node) + " (each too narrow to draw; click to zoom into their caller)" :
        frameName(frame), "name"],
      [frameLocation(frame), "location"],
      [frameSource(frame), "source"],
      [formatBytes(node.bytes) + " (" + percent(node.bytes, state.tree.bytes) + " of the total)", "bytes"],
      [node.count.toLocaleString("en-US") + " allocation(s)", "count"]
    ];
    if (diff) {
      var figures = diffFigures(node);
      var change = figures[0] - figures[2];
      lines.splice(2, 2,
        ["new: " + formatBytes(figures[0]) + " in " + figures[1].toLocaleString("en-US") + " allocation(s)", "new"],
        ["base: " + formatBytes(figures[2]) + " in " + figures[3].toLocaleString("en-US") + " allocation(s)", "base"],
        ["change: " + (change > 0 ? "+" : change < 0 ? "-" : "") + formatBytes(Math.abs(change)) +
          (figures[2] > 0 ? " (" + (change >= 0 ? "+" : "") + (100 * change / figures[2]).toFixed(1) + "%)" : "") +
          "; frames sized by the " + (state.byBase ? "base" : "new capture") + ", " +
          percent(node.bytes, state.tree.bytes) + " of its total", "change"]);
    }
    lines.forEach(function (line) {
      if (!line[0]) {
        return;
      }
      var div = document.createElement("div");
      div.className = line[1];
      div.textContent = line[0];
      tooltip.appendChild(div);
    });
    tooltip.hidden = false;
    var x = Math.min(event.clientX + 14, window.innerWidth - tooltip.offsetWidth - 8);
    var y = event.clientY + 16;
    if (y + tooltip.offsetHeight > window.innerHeight) {
      y = event.clientY - tooltip.offsetHeight - 10;
    }
    tooltip.style.left = Math.max(0, x) + "px";
    tooltip.style.top = Math.max(0, y) + "px";
  }

  function boxAt(event) {
    var target = event.target.closest ? event.target.closest(".frame") : null;
    return target ? state.boxes[Number(target.dataset.box)] : null;
  }

  graph.addEventListener("mousemove", function (event) {
    var box = boxAt(event);
    if (box) {
      showTooltip(event, box);
    } else {
      tooltip.hidden = true;
    }
  });
  graph.addEventListener("mouseleave", function () {
    tooltip.hidden = true;
  });
  // Each zoom is a history entry, so the browser's Back button zooms back out the way it came.
  function zoomTo(path) {
    state.zoom = path;
    history.pushState({ memprofZoom: path }, "");
    render();
  }
  window.addEventListener("popstate", function (event) {
    state.zoom = event.state && event.state.memprofZoom ? event.state.memprofZoom : [];
    render();
  });
  graph.addEventListener("click", function (event) {
    var box = boxAt(event);
    if (box) {
      zoomTo(framePathOf(box.node));
    }
  });
  zoomOutButton.addEventListener("click", function () {
    zoomTo(framePathOf(zoomChain().slice(-2)[0]));
  });
  resetButton.addEventListener("click", function () {
    zoomTo([]);
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && document.activeElement !== searchBox) {
      zoomTo([]);
    }
  });
  searchBox.addEventListener("input", function () {
    state.query = searchBox.value.trim().toLowerCase();
    render();
  });

  var allOption = document.createElement("option");
  allOption.value = "-1";
  allOption.textContent = "All threads";
  threadSelect.appendChild(allOption);
  data.threads.forEach(function (thread, index) {
    var option = document.createElement("option");
    option.value = String(index);
    option.textContent = threadLabel(index);
    threadSelect.appendChild(option);
  });
  threadSelect.addEventListener("change", function () {
    state.thread = Number(threadSelect.value);
    rebuild();
  });
  invertedBox.checked = state.inverted;
  invertedBox.addEventListener("change", function () {
    state.inverted = invertedBox.checked;
    state.zoom = [];
    rebuild();
  });
  if (sizeByBaseBox) {
    document.getElementById("base-name").textContent = data.base_title;
    sizeByBaseBox.addEventListener("change", function () {
      state.byBase = sizeByBaseBox.checked;
      rebuild();
    });
  }
  splitBox.checked = state.split;
  splitBox.addEventListener("change", function () {
    state.split = splitBox.checked;
    state.zoom = [];
    rebuild();
  });

  // With --temporal, the graph shows what was allocated in the dragged range and still live at its
  // end; the chart takes drags (and gets the "temporal" class) once the rows are unpacked.
  // An event's time is known to the sampler's tick (each row has the tick it followed), so a
  // dragged range is widened to the ticks around it: [the last tick at or before its start, the
  // first tick at or after its end), the end of the capture (Infinity) if none follows. Ranges
  // that differ by a few pixels inside the same ticks then give the same answer, and the one
  // Capture.range_stacks gives for the ticks shown.
  function snapRange(range) {
    var ticks = data.ticks;
    var start = 0;
    var end = Infinity;
    for (var i = 0; i < ticks.length; i++) {
      if (ticks[i] <= range[0]) {
        start = ticks[i];
      }
      if (ticks[i] >= range[1] && end === Infinity) {
        end = ticks[i];
      }
    }
    return [start, end];
  }

  function onRange(dragged) {
    var range = snapRange(dragged);
    state.range = range;
    state.zoom = [];
    rebuild();
    var endText = range[1] === Infinity ? "the end (" + formatSeconds(data.duration_ms) + ")" : formatSeconds(range[1]);
    rangeText.textContent = "Allocated between " + formatSeconds(range[0]) + " and " + endText +
      " (the sampler's ticks around the selection) and still live at " + endText + ": " +
      formatBytes(state.tree.bytes) + " in " + state.tree.count.toLocaleString("en-US") + " allocation(s).";
    rangeText.dataset.start = String(range[0]);
    rangeText.dataset.end = range[1] === Infinity ? "end" : String(range[1]);
    rangeText.dataset.bytes = String(state.tree.bytes);
    clearRangeButton.disabled = false;
    return [range[0], range[1] === Infinity ? data.duration_ms : range[1]];
  }

  rebuild();
  if (typeof data.intervals !== "string") {
    memprofChart.draw(chart, data, null);
  } else if (typeof DecompressionStream === "undefined") {
    memprofChart.draw(chart, data, null);
    rangeText.textContent = "This browser cannot unpack the time ranges (it lacks DecompressionStream).";
  } else {
    inflate(data.intervals).then(function (bytes) {
      data.intervals = unpackIntervals(bytes, data.ticks, data.threads.length > 1);
      var clearSelection = memprofChart.draw(chart, data, onRange);
      clearRangeButton.addEventListener("click", function () {
        state.range = null;
        clearSelection();
        rangeText.textContent = "Drag across the chart to show what was allocated in a time range and still " +
          "live at its end.";
        clearRangeButton.disabled = true;
        rebuild();
      });
    }, function (error) {
      memprofChart.draw(chart, data, null);
      rangeText.textContent = "The time ranges could not be unpacked: " + error;
    });
  }
  var resizeTimer = 0;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(render, 100);
  });
})();
