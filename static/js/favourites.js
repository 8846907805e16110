// Favourite buttons and e-mail switches without a page reload. The forms work on their own (POST,
// then back to this page); this only sends them with fetch and updates the button in place. A
// guest is sent to sign in (the server remembered the click and adds it once they are signed in).
(function () {
  "use strict";

  function send(form) {
    return fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    }).then(function (response) {
      return response.json().then(function (data) {
        if (response.status === 401 && data.login_url) {
          window.location.href = data.login_url;
          return null;
        }
        if (!response.ok) { throw new Error(response.status); }
        return data;
      });
    });
  }

  function announce(text) {
    var live = document.getElementById("fav-live");
    if (!live) {
      live = document.createElement("p");
      live.id = "fav-live";
      live.className = "visually-hidden";
      live.setAttribute("aria-live", "polite");
      document.body.appendChild(live);
    }
    live.textContent = text || "";
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var isFav = form.hasAttribute("data-fav");
    var isNotify = form.hasAttribute("data-fav-notify");
    if (!(isFav || isNotify) || !window.fetch || !window.FormData) { return; }
    event.preventDefault();
    var button = form.querySelector("button");
    if (button.disabled) { return; }
    button.disabled = true;
    send(form).then(function (data) {
      if (!data) { return; }
      if (isFav) {
        var on = data.favourited;
        button.setAttribute("aria-pressed", on ? "true" : "false");
        button.title = button.getAttribute(on ? "data-title-on" : "data-title-off");
        button.querySelector(".fav-label").textContent = button.getAttribute(on ? "data-label-on" : "data-label-off");
        form.action = form.getAttribute(on ? "data-remove" : "data-add");
      } else {
        button.setAttribute("aria-checked", data.notify ? "true" : "false");
        form.querySelector("input[name=notify]").value = data.notify ? "0" : "1";
      }
      announce(data.message);
    }).catch(function () {
      form.submit(); // let the server answer the plain way
    }).then(function () { button.disabled = false; });
  });
})();
