/* Glue that runs in the browser: the nurse field's clientside callback, a 401 (logged off)
 * handled without a frozen screen, and the sound bar's click. The live values come over the
 * push stream (push.js). */
(function () {
  "use strict";

  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    chairside: {
      /* The nurse's name: field <-> localStorage (dcc.Store storage_type="local"). */
      nurse: function (value, _ts, stored) {
        var dc = window.dash_clientside;
        var trig = dc.callback_context.triggered_id;
        var name;
        if (trig === "nurse-input") {
          name = (value || "").trim();
          return [dc.no_update, name, name ? "nurse-input" : "nurse-input missing"];
        }
        // page load, or the store read localStorage: fill the field only while it is
        // empty, so a late store update never overwrites what the nurse is typing
        if (value) { return [dc.no_update, dc.no_update, "nurse-input"]; }
        name = stored || "";
        return [name, dc.no_update, name ? "nurse-input" : "nurse-input missing"];
      }
    }
  });

  // Logged off (after inactivity, or the account was disabled): the server answers 401, and
  // the tab goes to the login page instead of showing a frozen bay. Not the read-only wall
  // display: it never leaves the bay (it must keep showing it and sounding); a 401 there
  // only shows its "read-only" hint for a few seconds.
  var hintTimer = null;

  function wallDisplay() {
    return document.querySelector(".hdr-nurse.wall-display") !== null;
  }

  function readOnlyHint() {
    document.body.classList.add("readonly-hint-on");
    if (hintTimer !== null) { clearTimeout(hintTimer); }
    hintTimer = setTimeout(function () {
      document.body.classList.remove("readonly-hint-on");
      hintTimer = null;
    }, 8000);
  }

  if (window.fetch) {
    var plainFetch = window.fetch.bind(window);
    window.fetch = function () {
      return plainFetch.apply(null, arguments).then(function (response) {
        if (response.status === 401 && location.pathname !== "/login") {
          if (wallDisplay()) {
            readOnlyHint();
          } else {
            location.assign("/login?next=" + encodeURIComponent(location.pathname));
          }
        }
        return response;
      });
    };
  }

  // A click anywhere on the "ALARM SOUND OFF" bar (the #sound-enable button, which covers the
  // whole header while the screen cannot be heard) starts audio synchronously, inside the
  // user gesture, and remembers the choice for reloads and restarts.
  document.addEventListener("click", function (ev) {
    var target = ev.target;
    if (target && target.closest && target.closest("#sound-enable") && window.chairsideAudio) {
      window.chairsideAudio.enable();
    }
  }, true);
})();
