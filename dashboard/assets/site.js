/* The site view's push stream (dashboard/site_push.py): while the site page is shown, one
 * EventSource on /live/site-stream. Each event carries the keys whose value changed:
 * "<bay>|<field>" (and "as_of"), written into the element whose data-sf is the key (text),
 * or the key without its "_cls" suffix (class). Nothing is re-rendered. Leaving the page
 * closes the stream; coming back gets the whole view again. */
(function () {
  "use strict";

  var source = null;
  var retry = null;
  var els = {};

  function index() {
    els = {};
    var found = document.querySelectorAll("[data-sf]");
    for (var i = 0; i < found.length; i++) { els[found[i].getAttribute("data-sf")] = found[i]; }
  }

  function write(key, value) {
    if (/_cls$/.test(key)) {
      var el = els[key.slice(0, -4)];
      if (el && el.className !== value) { el.className = value; }
    } else if (els[key] && els[key].textContent !== value) {
      els[key].textContent = value;
    }
  }

  function apply(changed) {
    for (var key in changed) {
      if (Object.prototype.hasOwnProperty.call(changed, key)) { write(key, changed[key]); }
    }
    window.chairsideSite.events += 1;
    window.chairsideSite.last = Date.now();
  }

  function disconnect() {
    if (source !== null) { source.close(); source = null; }
    if (retry !== null) { clearTimeout(retry); retry = null; }
  }

  function later(ms) {
    disconnect();
    retry = setTimeout(function () { retry = null; sync(); }, ms);
  }

  function connect() {
    source = new EventSource("/live/site-stream");
    source.onmessage = function (ev) { apply(JSON.parse(ev.data)); };
    // a login that ended: ask (a 401 takes the tab to the login page, see chairside.js)
    source.addEventListener("auth", function () {
      if (window.fetch) { window.fetch("/live/check").catch(function () { /* retried */ }); }
      later(1000);
    });
    source.addEventListener("busy", function (ev) { later(1000 * (JSON.parse(ev.data).retry_s || 5)); });
    source.onerror = function () {
      if (source !== null && source.readyState === EventSource.CLOSED) { later(1000); }
    };
  }

  /* The site page appeared (connect: the first event is the whole view) or went. */
  function sync() {
    var shown = document.getElementById("site-grid") !== null;
    if (shown) {
      index();
      if (source === null && retry === null) { connect(); }
    } else {
      disconnect();
    }
  }

  window.chairsideSite = {events: 0, last: 0};

  function start() {
    new MutationObserver(function (mutations) {
      for (var i = 0; i < mutations.length; i++) {
        var m = mutations[i];
        var nodes = Array.prototype.concat.call([], Array.prototype.slice.call(m.addedNodes),
                                                Array.prototype.slice.call(m.removedNodes));
        for (var j = 0; j < nodes.length; j++) {
          if (nodes[j].nodeType === 1) { sync(); return; }  // elements, not our text writes
        }
      }
    }).observe(document.body, {childList: true, subtree: true});
    sync();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
