/* Clientside callbacks (dash_clientside.chairside): glue that runs in the browser, so a
 * tick costs one small JSON download and no further round trips. */
(function () {
  "use strict";

  // Last value written per element and property: an output is only updated when its text
  // or class changes. Ids carry a per-render "g", so a freshly rendered tile always gets
  // its first update.
  var written = {};
  var renders = "";  // the "g" of the tiles on the page: a new page starts a new cache

  function key(id, prop) {
    return [id.chair, id.f, id.g, prop].join("|");
  }

  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    chairside: {
      /* bay-store -> every live field of every tile on the page (TILE_FIELDS). */
      tiles: function (store) {
        var dc = window.dash_clientside;
        var outs = dc.callback_context.outputs_list;
        var chairs = (store && store.chairs) || {};
        var gens = outs.length && outs[0].length ? outs[0].map(function (o) { return o.id.g; }).join() : "";
        if (gens !== renders) { written = {}; renders = gens; }
        return outs.map(function (group) {
          return group.map(function (o) {
            var tile = chairs[o.id.chair];
            var name = o.property === "className" ? o.id.f + "_cls"
              : o.property === "title" ? o.id.f + "_title" : o.id.f;
            if (!tile || !(name in tile)) { return dc.no_update; }
            var k = key(o.id, o.property);
            if (written[k] === tile[name]) { return dc.no_update; }
            written[k] = tile[name];
            return tile[name];
          });
        });
      },

      /* bay-store -> header clock, alarm count, sound state (and the tone itself); and
       * whether this screen can be heard ("audible" | "blocked" | "off") into sound-store,
       * which the next tick reports to the server. */
      header: function (store) {
        var audio = window.chairsideAudio;
        var sound = (store && store.sound) || "silent";
        if (audio) { audio.set(sound); }
        var enabled = audio && audio.audible();
        var label;
        if (sound === "silent") {
          label = enabled ? "Sound on · quiet" : "Sound not enabled";
        } else {
          label = (enabled ? "Sounding: " : "Sound off: ") + sound.toUpperCase();
        }
        var cls = "sound-state sound-" + sound + (enabled ? " enabled" : " disabled");
        return [
          store ? store.clock : "",
          store ? String(store.alarms) : "0",
          store ? store.alarms_cls : "nav-count",
          label,
          cls,
          audio ? audio.status() : "off",
          (store && store.bay_alarm) || "",
          store && store.bay_alarm ? "bay-alarm shown" : "bay-alarm"
        ];
      },

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
