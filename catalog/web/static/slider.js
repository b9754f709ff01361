// Before/after slider: the original is drawn over the colorized version and clipped at the handle.
(function () {
  document.querySelectorAll("[data-compare]").forEach(function (box) {
    var range = box.querySelector("input[type=range]");
    function update() { box.style.setProperty("--pos", range.value + "%"); }
    range.addEventListener("input", update);
    update();
  });
})();
