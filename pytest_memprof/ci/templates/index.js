// Sorting and filtering of the session report's test table. Our own code; it only reorders
// rows and hides them: the cells' text was escaped when the page was rendered.
(function () {
  "use strict";
  var table = document.getElementById("tests");
  var body = table.tBodies[0];
  var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);
  var filter = document.getElementById("filter");
  var shown = document.getElementById("shown");

  function cellValue(row, index, type) {
    var cell = row.cells[index];
    if (type === "number") {
      var value = parseFloat(cell.getAttribute("data-value"));
      return isNaN(value) ? -Infinity : value;
    }
    return cell.textContent.toLowerCase();
  }

  function sortBy(index) {
    var header = headers[index];
    var type = header.getAttribute("data-type");
    var descending = header.getAttribute("aria-sort") !== "descending";
    headers.forEach(function (other) { other.removeAttribute("aria-sort"); });
    header.setAttribute("aria-sort", descending ? "descending" : "ascending");
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = cellValue(a, index, type), y = cellValue(b, index, type);
      var order = x < y ? -1 : x > y ? 1 : 0;
      return descending ? -order : order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }

  function applyFilter() {
    var needle = filter.value.trim().toLowerCase();
    var visible = 0;
    Array.prototype.forEach.call(body.rows, function (row) {
      var match = !needle || row.cells[0].textContent.toLowerCase().indexOf(needle) >= 0 ||
        row.cells[1].textContent.toLowerCase().indexOf(needle) >= 0;
      row.hidden = !match;
      if (match) visible += 1;
    });
    shown.textContent = visible + " of " + body.rows.length + " shown";
  }

  headers.forEach(function (header, index) {
    header.addEventListener("click", function () { sortBy(index); });
  });
  filter.addEventListener("input", applyFilter);
  applyFilter();
})();
