/* The push stream (dashboard/push.py): one EventSource per tab. Each event carries the keys
 * whose value changed: "<chair>|<field>" for a tile (written into the element with that
 * data-tf; "_cls" and "_title" suffixes go to its class and tooltip) and the header's keys.
 * Nothing is re-rendered: only the text or class that changed is written. A new page (the
 * bay, a chair) gets the latest of everything as soon as its tiles appear.
 * In an HA pair each stream's first event names its server: one that comes back from another
 * server than before means the standby took over, and the screen says so (.takeover-banner). */
(function () {
  "use strict";

  var state = {};   // the newest value of every key
  var els = {};     // data-tf -> element on the page now
  var source = null;
  var reported = null;  // the sound state the open stream was told
  var retry = null;
  var popupsPending = false;
  var server = null;    // the server the stream comes from (an HA pair's only)
  var takeover = null;  // the timer that hides the takeover banner
  var TAKEOVER_MS = 120000;
  var tab = (function () {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join("");
  }());

  function audioStatus() {
    return window.chairsideAudio ? window.chairsideAudio.status() : "off";
  }

  function index() {
    els = {};
    var found = document.querySelectorAll("[data-tf]");
    for (var i = 0; i < found.length; i++) { els[found[i].getAttribute("data-tf")] = found[i]; }
  }

  function byId(id) { return document.getElementById(id); }

  function setText(el, value) {
    if (el && el.textContent !== value) { el.textContent = value; }
  }

  function setClass(el, value) {
    if (el && el.className !== value) { el.className = value; }
  }

  function writeTile(key, value) {
    var bar = key.indexOf("|");
    var name = key.slice(bar + 1);
    var prop = "text";
    if (/_cls$/.test(name)) { prop = "class"; name = name.slice(0, -4); }
    else if (/_title$/.test(name)) { prop = "title"; name = name.slice(0, -6); }
    var el = els[key.slice(0, bar + 1) + name];
    if (!el) { return; }
    if (prop === "text") { setText(el, value); }
    else if (prop === "class") { setClass(el, value); }
    else if (el.title !== value) { el.title = value; }
  }

  /* The header: clock, alarm count, the bay-wide alarm, what sounds and whether it can. */
  function writeHeader(changed) {
    var audio = window.chairsideAudio;
    var sound = state.sound || "silent";
    if (audio) { audio.set(sound); }  // also: an update arrived (the connection is alive)
    if ("clock" in changed) { setText(byId("clock"), state.clock); }
    if ("alarms" in changed) { setText(byId("nav-alarm-count"), state.alarms); }
    if ("alarms_cls" in changed) { setClass(byId("nav-alarm-count"), state.alarms_cls); }
    if ("bay_alarm" in changed) {
      setText(byId("bay-alarm"), state.bay_alarm);
      setClass(byId("bay-alarm"), state.bay_alarm ? "bay-alarm shown" : "bay-alarm");
    }
    var enabled = audio && audio.audible();
    var label = sound === "silent" ? (enabled ? "Sound on · quiet" : "Sound not enabled")
      : (enabled ? "Sounding: " : "Sound off: ") + sound.toUpperCase();
    setText(byId("sound-state"), label);
    setClass(byId("sound-state"), "sound-state sound-" + sound + (enabled ? " enabled" : " disabled"));
    if ("popups" in changed) { popupsPending = true; }
    renderPopups();
  }

  /* The pop-ups changed: Dash renders them (with their buttons), once the page is there. */
  function renderPopups() {
    var dc = window.dash_clientside;
    if (!popupsPending || !byId("popups") || !dc || !dc.set_props) { return; }
    try {
      dc.set_props("popup-sig", {data: state.popups});
      popupsPending = false;
    } catch (e) { /* the renderer is not ready yet: the next event or new element retries */ }
  }

  /* The banner says the standby took over until clicked away or for TAKEOVER_MS; the
   * alarms sound as ever meanwhile (writeHeader). */
  function showTakeover(shown) {
    document.body.classList.toggle("taken-over", shown);
    if (takeover !== null) { clearTimeout(takeover); takeover = null; }
    if (shown) { takeover = setTimeout(function () { showTakeover(false); }, TAKEOVER_MS); }
  }

  function serverIs(id) {
    if (server !== null && id !== server) { showTakeover(true); }
    server = id;
    window.chairsidePush.server = id;
  }

  function apply(changed) {
    var key;
    if ("server" in changed) { serverIs(changed.server); }
    for (key in changed) {
      if (Object.prototype.hasOwnProperty.call(changed, key)) {
        state[key] = changed[key];
        if (key.indexOf("|") > 0) { writeTile(key, changed[key]); }
      }
    }
    writeHeader(changed);
    window.chairsidePush.events += 1;
    window.chairsidePush.last = Date.now();
    if (audioStatus() !== reported) { connect(); }  // tell the server whether it can be heard
  }

  /* New tiles on the page (another page, or the bay re-rendered): index them and give them
   * the latest of everything. Our own writes add only text nodes, so they do not count. */
  function watch() {
    new MutationObserver(function (mutations) {
      for (var i = 0; i < mutations.length; i++) {
        var added = mutations[i].addedNodes;
        for (var j = 0; j < added.length; j++) {
          if (added[j].nodeType === 1) {
            renderPopups();
            index();
            for (var key in state) {
              if (key.indexOf("|") > 0) { writeTile(key, state[key]); }
            }
            return;
          }
        }
      }
    }).observe(document.body, {childList: true, subtree: true});
  }

  function later(ms) {
    if (retry === null) { retry = setTimeout(function () { retry = null; connect(); }, ms); }
  }

  /* The stream was refused (a non-200 answer) or closed by the server: ask whether this
   * screen may still see the bay (a 401 takes it to the login page, see chairside.js). */
  function check() {
    if (window.fetch) { window.fetch("/live/check").catch(function () { /* offline: retried */ }); }
  }

  function connect() {
    if (source !== null) { source.close(); }
    reported = audioStatus();
    source = new EventSource("/live/stream?tab=" + tab + "&sound=" + reported);
    source.onmessage = function (ev) { apply(JSON.parse(ev.data)); };
    source.addEventListener("auth", function () { source.close(); check(); later(1000); });
    source.addEventListener("busy", function (ev) {
      source.close();
      later(1000 * (JSON.parse(ev.data).retry_s || 5));
    });
    source.onerror = function () {
      // a lost connection is retried by the browser itself; a refused one is not
      if (source.readyState === EventSource.CLOSED) { check(); later(1000); }
    };
  }

  window.chairsidePush = {events: 0, last: 0, tab: tab, state: state, server: null};

  function start() {
    index();
    watch();
    document.addEventListener("click", function (ev) {
      if (ev.target && ev.target.closest && ev.target.closest(".takeover-banner")) { showTakeover(false); }
    });
    connect();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
