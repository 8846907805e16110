// Quantities where they are chosen. Everything here is an enhancement: the forms work without it.
// * product page: a running total (price of the chosen denomination × quantity), the quantity
//   input bounded by the per-order limit and the codes left of that denomination;
// * cart: a changed quantity is sent at once;
// * checkout: a changed quantity re-prices the order at once (the "Update quantities" button),
//   Enter in the other fields places the order, and a double click sends one request.
(function () {
  "use strict";

  function yuan(fen) {
    var sign = fen < 0 ? "\u2212" : "";
    fen = Math.abs(fen);
    var cents = fen % 100;
    return sign + "\u00a5" + Math.floor(fen / 100) + "." + (cents < 10 ? "0" : "") + cents;
  }

  function wholeNumber(value) {
    return /^\s*\d+\s*$/.test(value) ? parseInt(value, 10) : NaN;
  }

  function submitWith(form, button) {
    if (form.requestSubmit) { form.requestSubmit(button); } else { button.click(); }
  }

  // The unit-price offers of orders/pricing.py exclude each other and the buyer gets the best for the
  // line: the level (or list) price, a running flash special for its units (the rest at list price),
  // or the quantity tier the count reaches. Coupons and order offers are shown at checkout.
  function bestPrice(data, count) {
    var price = parseInt(data.price, 10);
    var list = parseInt(data.basePrice || data.price, 10);
    var best = { total: price * count, note: yuan(price) + " \u00d7 " + count };
    if (data.special) {
      var special = parseInt(data.special, 10);
      var units = Math.min(count, parseInt(data.specialUnits, 10));
      var withSpecial = special * units + list * (count - units);
      if (units > 0 && withSpecial < best.total) {
        best = { total: withSpecial, note: yuan(special) + " \u00d7 " + units + (count > units ? " + " + yuan(list) + " \u00d7 " + (count - units) : "") };
      }
    }
    (data.tiers ? data.tiers.split(";") : []).forEach(function (tier) {
      var parts = tier.split(":"), from = parseInt(parts[0], 10), unit = parseInt(parts[1], 10);
      if (count >= from && unit * count < best.total) {
        best = { total: unit * count, note: yuan(unit) + " \u00d7 " + count };
      }
    });
    return best;
  }

  // -- product page --------------------------------------------------------------------------------
  var total = document.querySelector("[data-running-total]");
  var quantity = document.getElementById("quantity");
  if (total && quantity) {
    var buy = quantity.form;
    var output = document.getElementById("running-total");
    var note = document.getElementById("running-total-note");
    var perOrder = parseInt(total.dataset.max, 10);
    var update = function () {
      var chosen = buy.querySelector('input[name="sku"]:checked');
      if (!chosen) { total.hidden = true; return; }
      var high = perOrder;
      if (chosen.dataset.stock) { high = Math.min(high, parseInt(chosen.dataset.stock, 10)); }
      quantity.max = String(high);
      var count = wholeNumber(quantity.value);
      total.hidden = false;
      if (isNaN(count) || count < parseInt(quantity.min || "1", 10) || count > high) {
        output.textContent = "\u2014";
        note.textContent = quantity.min + "\u2013" + high;
        total.classList.add("is-invalid");
        return;
      }
      total.classList.remove("is-invalid");
      var best = bestPrice(chosen.dataset, count);
      note.textContent = best.note;
      output.textContent = yuan(best.total);
    };
    buy.addEventListener("change", update);
    buy.addEventListener("input", update);
    update();
  }

  // -- cart ------------------------------------------------------------------------------------------
  document.querySelectorAll(".cart-line form.qty").forEach(function (form) {
    var input = form.querySelector('input[name="quantity"]');
    var button = form.querySelector('button[type="submit"]:not([name])');
    input.addEventListener("change", function () { submitWith(form, button); });
  });

  // -- checkout --------------------------------------------------------------------------------------
  var checkout = document.getElementById("checkout");
  if (checkout) {
    var updateButton = document.querySelector('button[name="update"][form="checkout"]');
    var placeButton = checkout.querySelector("button[data-once]");
    document.querySelectorAll("input[data-auto-update]").forEach(function (input) {
      input.addEventListener("change", function () { submitWith(checkout, updateButton); });
    });
    // The "Update quantities" button comes first on the page, so it is the form's default button:
    // Enter in an e-mail or other field means "place the order" all the same.
    checkout.addEventListener("keydown", function (event) {
      var target = event.target;
      if (event.key === "Enter" && target.tagName === "INPUT" && !target.hasAttribute("data-auto-update") && placeButton) {
        event.preventDefault();
        submitWith(checkout, placeButton);
      }
    });
    // A double click sends one request (the server also dedupes by the form's idempotency key).
    checkout.addEventListener("submit", function () {
      checkout.querySelectorAll("button[data-once]").forEach(function (b) { b.disabled = true; });
    });
  }
})();
