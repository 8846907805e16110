// Home carousel (templates/catalog/home.html): the slides are a horizontal scroll-snap row that
// works without this file (swipe on phones, scroll on desktops). This adds dots, keeps the current
// dot in step with the scroll, and turns to the next slide every few seconds unless the shopper
// hovers, focuses, touches it or asks for reduced motion.
(function () {
  "use strict";
  var DELAY = 5000;
  function setUp(root) {
    var track = root.querySelector(".carousel-track");
    var slides = track ? track.querySelectorAll(".carousel-slide") : [];
    var dotsBox = root.querySelector(".carousel-dots");
    if (!track || slides.length < 2 || !dotsBox) return;
    var dots = [];
    var current = 0;
    var paused = false;
    slides.forEach(function (slide, index) {
      var dot = document.createElement("button");
      dot.type = "button";
      dot.className = "carousel-dot";
      dot.setAttribute("aria-label", slide.getAttribute("aria-label") || String(index + 1));
      dot.addEventListener("click", function () { go(index); });
      dotsBox.appendChild(dot);
      dots.push(dot);
    });
    dotsBox.hidden = false;
    root.classList.add("is-enhanced");
    function mark(index) {
      current = index;
      dots.forEach(function (dot, i) { dot.setAttribute("aria-current", i === index ? "true" : "false"); });
    }
    function go(index) {
      var target = slides[(index + slides.length) % slides.length];
      track.scrollTo({ left: target.offsetLeft - track.offsetLeft, behavior: "smooth" });
      mark((index + slides.length) % slides.length);
    }
    var ticking = false;
    track.addEventListener("scroll", function () {
      if (ticking) return;
      ticking = true;
      window.requestAnimationFrame(function () {
        ticking = false;
        var width = track.clientWidth || 1;
        mark(Math.min(slides.length - 1, Math.max(0, Math.round(track.scrollLeft / width))));
      });
    }, { passive: true });
    ["mouseenter", "focusin", "touchstart"].forEach(function (name) {
      root.addEventListener(name, function () { paused = true; }, { passive: true });
    });
    ["mouseleave", "focusout"].forEach(function (name) {
      root.addEventListener(name, function () { paused = false; });
    });
    mark(0);
    var still = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    if (!still) {
      window.setInterval(function () {
        if (!paused && !document.hidden) go(current + 1);
      }, DELAY);
    }
  }
  function start() { document.querySelectorAll("[data-carousel]").forEach(setUp); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
