// The search page: a map to drag a bounding box on, and tidy URLs.
// The map: drag a rectangle to fill the bbox field (W,S,E,N). No tiles, no network.
(function () {
  var svg = document.getElementById("map"), field = document.getElementById("bbox");
  var box = document.getElementById("map-box"), clear = document.getElementById("bbox-clear");
  if (!svg || !field) return;
  var ext = svg.dataset.extent.split(",").map(Number);  // W, S, E, N
  var vb = svg.viewBox.baseVal, start = null;
  function toMap(ev) {
    var r = svg.getBoundingClientRect();
    var x = Math.min(Math.max((ev.clientX - r.left) * vb.width / r.width, 0), vb.width);
    var y = Math.min(Math.max((ev.clientY - r.top) * vb.height / r.height, 0), vb.height);
    return {x: x, y: y};
  }
  function lon(x) { return ext[0] + (ext[2] - ext[0]) * x / vb.width; }
  function lat(y) { return ext[3] - (ext[3] - ext[1]) * y / vb.height; }
  function draw(a, b) {
    box.setAttribute("x", Math.min(a.x, b.x)); box.setAttribute("y", Math.min(a.y, b.y));
    box.setAttribute("width", Math.abs(a.x - b.x)); box.setAttribute("height", Math.abs(a.y - b.y));
    box.setAttribute("visibility", "visible");
  }
  svg.addEventListener("pointerdown", function (ev) {
    if (ev.target.closest("a")) return;
    start = toMap(ev); svg.setPointerCapture(ev.pointerId); ev.preventDefault();
  });
  svg.addEventListener("pointermove", function (ev) { if (start) draw(start, toMap(ev)); });
  svg.addEventListener("pointerup", function (ev) {
    if (!start) return;
    var end = toMap(ev), a = start; start = null;
    if (Math.abs(a.x - end.x) < 3 || Math.abs(a.y - end.y) < 3) return;
    draw(a, end);
    field.value = [lon(Math.min(a.x, end.x)), lat(Math.max(a.y, end.y)), lon(Math.max(a.x, end.x)),
                   lat(Math.min(a.y, end.y))].map(function (v) { return v.toFixed(3); }).join(",");
  });
  clear.addEventListener("click", function () { field.value = ""; box.setAttribute("visibility", "hidden"); });
})();

// Leave empty fields out of the URL, so a search link reads like what was asked.
(function () {
  var form = document.getElementById("search-form");
  if (!form) return;
  form.addEventListener("submit", function () {
    form.querySelectorAll("input, select").forEach(function (el) {
      if (!el.value && el.type !== "radio" && el.type !== "checkbox") el.disabled = true;
      if (el.type === "radio" && el.checked && !el.value) el.disabled = true;
    });
  });
})();
