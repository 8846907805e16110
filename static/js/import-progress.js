/* Progress of a card-code import (admin preview page, templates/admin/catalog/importbatch/preview.html).
 *
 * While the batch is being checked or imported, polls the batch's JSON endpoint once a second and
 * moves the <progress> bar; when the batch leaves that state, reloads the page to show the result.
 * No framework; the JSON never holds codes.
 */
(function () {
  "use strict";

  var box = document.getElementById("import-progress");
  if (!box || box.dataset.running !== "true") {
    return;
  }
  var bar = box.querySelector("progress");
  var text = box.querySelector(".import-progress-text");
  var startStatus = box.dataset.status;
  var failures = 0;

  function format(template, values) {
    return template.replace(/%\((\w+)\)s/g, function (_, key) {
      return values[key] === undefined ? "" : Number(values[key]).toLocaleString();
    });
  }

  function field(name, value) {
    var nodes = document.querySelectorAll('[data-field="' + name + '"]');
    for (var i = 0; i < nodes.length; i++) {
      nodes[i].textContent = typeof value === "number" ? value.toLocaleString() : value;
    }
  }

  function show(data) {
    field("status_label", data.status_label);
    field("message", data.message); // the state's own words, so the page never shows a stale message
    field("total", data.total);
    field("valid", data.valid);
    field("errors", data.errors);
    if (data.status === "committing") {
      bar.removeAttribute("value"); // indeterminate: one database statement, no row count
      text.textContent = box.dataset.textImporting;
    } else if (data.total > 0) {
      bar.value = data.percent;
      text.textContent = format(box.dataset.textRows, data) + " (" + data.percent + "%)";
    } else {
      bar.removeAttribute("value");
      text.textContent = format(box.dataset.textRowsUnknown, data);
    }
  }

  function poll() {
    fetch(box.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.json();
      })
      .then(function (data) {
        failures = 0;
        show(data);
        if (data.running) {
          window.setTimeout(poll, 1000);
        } else {
          bar.value = data.percent;
          if (data.status !== startStatus || !data.running) {
            window.location.reload();
          }
        }
      })
      .catch(function () {
        failures += 1; // a restart or a blip: back off, keep trying
        window.setTimeout(poll, Math.min(30000, 1000 * Math.pow(2, failures)));
      });
  }

  window.setTimeout(poll, 500);
})();
