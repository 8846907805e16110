// Ticks the flash-special countdowns the server rendered (<time data-countdown="seconds left">).
// Counts from the seconds the server computed, not the visitor's clock, which may be wrong.
(function () {
  "use strict";
  var clocks = document.querySelectorAll("time[data-countdown]");
  if (!clocks.length) return;
  var started = Date.now();
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function tick() {
    var elapsed = Math.floor((Date.now() - started) / 1000);
    clocks.forEach(function (clock) {
      var left = parseInt(clock.getAttribute("data-countdown"), 10) - elapsed;
      if (left <= 0) {
        clock.textContent = clock.getAttribute("data-done");
        return;
      }
      // data-day-unit (campaign pages): "3d 04:05:06" rather than "76:05:06" for a window of days.
      var unit = clock.getAttribute("data-day-unit"), days = unit ? Math.floor(left / 86400) : 0;
      var hours = Math.floor(left / 3600) - days * 24;
      clock.textContent = (days ? days + unit + " " : "") + pad(hours) + ":" + pad(Math.floor(left / 60) % 60) + ":" + pad(left % 60);
    });
  }
  tick();
  setInterval(tick, 1000);
})();
