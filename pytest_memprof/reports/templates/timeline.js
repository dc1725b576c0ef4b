// memprof heap-over-time chart: heap and RSS curves with the peak marked and, for temporal
// reports, a time range picked by dragging. Also the number formats the report pages share.
var memprofChart = (function () {
  "use strict";

  function formatBytes(bytes) {
    var units = ["B", "KiB", "MiB", "GiB", "TiB"];
    var value = Math.abs(bytes);
    var unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit++;
    }
    var sign = bytes < 0 ? "-" : "";
    return sign + (unit === 0 ? value.toFixed(0) : value.toFixed(1)) + " " + units[unit];
  }

  function formatSeconds(ms) {
    return (ms / 1000).toFixed(ms < 10000 ? 3 : 1) + " s";
  }

  function draw(chart, data, onRange) {
    var timeline = data.timeline;
    var endMs = Math.max(data.duration_ms, timeline.length ? timeline[timeline.length - 3] : 0, 1);

    var SVG = "http://www.w3.org/2000/svg";
    var CHART_W = 1000;
    var CHART_H = 150;
    var PAD_TOP = 16;
    var PAD_BOTTOM = 16;

    function svg(name, attributes, parent) {
      var element = document.createElementNS(SVG, name);
      Object.keys(attributes).forEach(function (key) {
        element.setAttribute(key, attributes[key]);
      });
      parent.appendChild(element);
      return element;
    }

    function chartX(ms) {
      return CHART_W * ms / endMs;
    }

    function drawChart() {
      chart.setAttribute("viewBox", "0 0 " + CHART_W + " " + CHART_H);
      chart.setAttribute("preserveAspectRatio", "none");
      if (timeline.length < 6) {
        svg("text", { x: 8, y: 20 }, chart).textContent = "Too short for a timeline (" + timeline.length / 3 +
          " sample(s) of 10 ms).";
        return;
      }
      // Heap and RSS each get their own scale: RSS is often many times the heap, which would
      // flatten the heap curve that the range selection is about.
      var heapTop = 1;
      var rssTop = 1;
      for (var i = 0; i < timeline.length; i += 3) {
        heapTop = Math.max(heapTop, timeline[i + 1]);
        rssTop = Math.max(rssTop, timeline[i + 2]);
      }
      function y(bytes, top) {
        return PAD_TOP + (CHART_H - PAD_TOP - PAD_BOTTOM) * (1 - bytes / top);
      }
      var heap = ["M0," + y(0, heapTop)];
      var rss = [];
      var hasRss = false;
      for (i = 0; i < timeline.length; i += 3) {
        var x = chartX(timeline[i]).toFixed(1);
        heap.push("L" + x + "," + y(timeline[i + 1], heapTop).toFixed(1));
        if (timeline[i + 2] > 0) {
          hasRss = true;
          rss.push((rss.length ? "L" : "M") + x + "," + y(timeline[i + 2], rssTop).toFixed(1));
        }
      }
      heap.push("L" + chartX(timeline[timeline.length - 3]).toFixed(1) + "," + y(0, heapTop));
      svg("path", { d: heap.join(" "), fill: "rgba(74,111,214,0.35)", stroke: "#4a6fd6", "stroke-width": 1.2,
        "vector-effect": "non-scaling-stroke", "class": "heap" }, chart);
      if (hasRss) {
        svg("path", { d: rss.join(" "), fill: "none", stroke: "#8a8f9c", "stroke-width": 1.2,
          "stroke-dasharray": "4 3", "vector-effect": "non-scaling-stroke", "class": "rss" }, chart);
      }
      svg("line", { x1: chartX(data.peak_ms), x2: chartX(data.peak_ms), y1: PAD_TOP, y2: CHART_H - PAD_BOTTOM,
        stroke: "#b3261e", "stroke-width": 1, "vector-effect": "non-scaling-stroke" }, chart);
      var legend = "heap (blue) up to " + formatBytes(heapTop) +
        (hasRss ? "; RSS (dashed, own scale) up to " + formatBytes(rssTop) : "") +
        "; peak (red line) at " + formatSeconds(data.peak_ms);
      svg("text", { x: 6, y: 12 }, chart).textContent = legend;
      svg("text", { x: 6, y: CHART_H - 3 }, chart).textContent = "0 s";
      svg("text", { x: CHART_W - 6, y: CHART_H - 3, "text-anchor": "end" }, chart).textContent = formatSeconds(endMs);
    }

    // A drag across the chart picks a range [start ms, end ms] and hands it to onRange, which
    // may answer the range it took instead (snapped to the sampler's ticks): that one is shown.
    // The returned function hides the selection again.
    function setupRangeSelection(onRange) {
      chart.classList.add("temporal");
      var selection = svg("rect", { x: 0, y: 0, width: 0, height: CHART_H, fill: "rgba(214,60,196,0.18)",
        stroke: "#d63cc4", "vector-effect": "non-scaling-stroke", visibility: "hidden", "class": "selection" }, chart);
      var dragStart = null;
      // Within a few pixels of either edge means the edge itself: the start and the end of the
      // capture must be reachable by hand.
      function msAt(event) {
        var rect = chart.getBoundingClientRect();
        var pixels = event.clientX - rect.left;
        if (pixels <= 4) {
          return 0;
        }
        if (pixels >= rect.width - 4) {
          return endMs;
        }
        return endMs * pixels / rect.width;
      }
      function show(a, b) {
        selection.setAttribute("x", chartX(Math.min(a, b)));
        selection.setAttribute("width", Math.abs(chartX(b) - chartX(a)));
        selection.setAttribute("visibility", "visible");
      }
      chart.addEventListener("pointerdown", function (event) {
        dragStart = msAt(event);
        chart.setPointerCapture(event.pointerId);
        show(dragStart, dragStart);
      });
      chart.addEventListener("pointermove", function (event) {
        if (dragStart !== null) {
          show(dragStart, msAt(event));
        }
      });
      chart.addEventListener("pointerup", function (event) {
        if (dragStart === null) {
          return;
        }
        var end = msAt(event);
        var range = [Math.min(dragStart, end), Math.max(dragStart, end)];
        dragStart = null;
        if (chartX(range[1]) - chartX(range[0]) < 2) {
          return;
        }
        var taken = onRange(range);
        if (taken) {
          show(taken[0], Math.min(taken[1], endMs));
        }
      });
      return function clearSelection() {
        selection.setAttribute("visibility", "hidden");
      };
    }

    drawChart();
    return onRange ? setupRangeSelection(onRange) : null;
  }

  return { draw: draw, formatBytes: formatBytes, formatSeconds: formatSeconds };
})();
