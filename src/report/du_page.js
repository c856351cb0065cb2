// Sorting and filtering of the repository table; the page is complete without it.
(function () {
  "use strict";
  var table = document.getElementById("repos");
  if (!table) { return; }
  var body = table.tBodies[0];
  var heads = table.tHead.rows[0].cells;
  var filter = document.getElementById("filter");
  var shown = document.getElementById("shown");

  function value(row, col, type) {
    var v = row.cells[col].getAttribute("data-value") || "";
    return type === "num" ? Number(v) : v;
  }

  function sortBy(col) {
    var th = heads[col];
    var type = th.getAttribute("data-type");
    var dir = th.getAttribute("aria-sort") === "descending" ? "ascending" : "descending";
    if (th.getAttribute("aria-sort") === "none" && type === "text") { dir = "ascending"; }
    for (var i = 0; i < heads.length; i++) {
      if (heads[i].hasAttribute("aria-sort")) { heads[i].setAttribute("aria-sort", "none"); }
    }
    th.setAttribute("aria-sort", dir);
    var sign = dir === "ascending" ? 1 : -1;
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = value(a, col, type), y = value(b, col, type);
      if (x < y) { return -sign; }
      if (x > y) { return sign; }
      var n = value(a, 0, "text"), m = value(b, 0, "text");
      return n < m ? -1 : n > m ? 1 : 0;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }

  Array.prototype.forEach.call(heads, function (th, col) {
    if (th.hasAttribute("data-type")) {
      th.addEventListener("click", function () { sortBy(col); });
    }
  });

  function applyFilter() {
    var words = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
    var n = 0;
    Array.prototype.forEach.call(body.rows, function (row) {
      var name = row.getAttribute("data-repo").toLowerCase();
      var match = words.every(function (w) { return name.indexOf(w) >= 0; });
      row.hidden = !match;
      if (match) { n++; }
    });
    shown.textContent = n + " of " + body.rows.length + " shown";
  }
  filter.addEventListener("input", applyFilter);

  // A tile opens its repository's details.
  Array.prototype.forEach.call(document.querySelectorAll("#treemap .tile[data-detail]"), function (tile) {
    tile.addEventListener("click", function () {
      var d = document.getElementById(tile.getAttribute("data-detail"));
      d.open = true;
      d.scrollIntoView({ block: "start" });
    });
  });
  // A link in the table opens the details it points to.
  Array.prototype.forEach.call(body.querySelectorAll("a[href^='#repo-']"), function (a) {
    a.addEventListener("click", function () {
      document.getElementById(a.getAttribute("href").slice(1)).open = true;
    });
  });
})();
