// Order page: countdown while unpaid, polling until the order's state changes, copy buttons.
(function () {
  var page = document.querySelector("article.order");
  if (!page) return;
  document.querySelectorAll("button.copy").forEach(function (button) {
    button.addEventListener("click", function () {
      var text = document.querySelector(button.dataset.copy).textContent.trim();
      var done = function () { button.textContent = "✓"; };
      if (navigator.clipboard) { navigator.clipboard.writeText(text).then(done, function () {}); }
    });
  });
  var counter = document.getElementById("countdown");
  if (counter) {
    var left = parseInt(counter.dataset.seconds, 10);
    var tick = function () {
      left = Math.max(0, left - 1);
      var m = Math.floor(left / 60), s = left % 60;
      counter.textContent = m + ":" + (s < 10 ? "0" : "") + s;
      if (left === 0) { window.location.reload(); }
    };
    tick(); setInterval(tick, 1000);
  }
  if (page.dataset.waiting === "1") {
    var initial = page.dataset.status;
    var poll = function () {
      fetch(page.dataset.statusUrl, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (data) { if (data.status !== initial) { window.location.reload(); } })
        .catch(function () {});
    };
    setInterval(poll, 2000);
  }
})();
