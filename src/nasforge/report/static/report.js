// Sorting on header click; a location hash "#sort=TABLE.KEY[.desc]" sorts on load, so a sorted
// view can be linked (and a headless browser can exercise this code without clicking).
// Inlined into the page by templates/page.html.j2; the page's CSP allows it by its sha256.
"use strict";
(function () {
  function value(cell, numeric) {
    var raw = cell.getAttribute("data-sort");
    if (raw === null) { raw = cell.textContent; }
    if (!numeric) { return raw.toLowerCase(); }
    var n = parseFloat(raw);
    return isNaN(n) ? null : n;
  }
  function sortBy(table, col, descending) {
    var head = table.tHead.rows[0], th = head.cells[col];
    var numeric = th.getAttribute("data-type") === "num", body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = value(a.cells[col], numeric), y = value(b.cells[col], numeric);
      if (x === null || y === null) { return (x === null) - (y === null); }
      var c = x < y ? -1 : (x > y ? 1 : 0);
      return descending ? -c : c;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    Array.prototype.forEach.call(head.cells, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", descending ? "descending" : "ascending");
  }
  var tables = document.querySelectorAll("table.sortable");
  Array.prototype.forEach.call(tables, function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
      th.addEventListener("click", function () {
        sortBy(table, col, th.getAttribute("aria-sort") === "ascending");
      });
    });
  });
  var match = /^#sort=([\w-]+)\.([\w-]+)(\.desc)?$/.exec(window.location.hash);
  if (match) {
    var table = document.getElementById(match[1]);
    if (table && table.tHead) {
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
        if (th.getAttribute("data-key") === match[2]) { sortBy(table, col, Boolean(match[3])); }
      });
    }
  }
})();
