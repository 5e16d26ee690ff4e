/* Chairside alarm sound (Web Audio API), after IEC 60601-1-8's tone patterns:
 *
 *   high    a burst of 10 pulses (3 + 2, pause, 3 + 2), repeated every 6 s
 *   medium  3 pulses, repeated every 9 s
 *   low     2 pulses, repeated every 20 s
 *
 * The server decides what sounds (an alarm's `sounding`: ACTIVE, not acknowledged or
 * paused; a higher priority raised during a pause is ACTIVE); this file only plays it.
 * Browsers allow sound only after a user gesture, unless started with an autoplay flag
 * (docs/kiosk.md). A click on the header's bar calls enable(), and the screen remembers the
 * choice (localStorage "chairside-sound", or the URL parameter ?sound=on of a kiosk): after a
 * reload, a browser restart or a reboot it enables itself at once. Where the browser lets it
 * start, the screen is audible without a click; where it blocks it (the AudioContext stays
 * suspended), and while sound was never enabled here, <body> has the class "sound-off" and the
 * whole header is the bar "ALARM SOUND OFF — click to enable".
 *
 * window.chairsideAudio.state is what the screen asks to sound: "high" | "medium" | "low" |
 * "silent" (tests read it); .audible() says whether a tone would be heard (enabled and the
 * AudioContext running); .status() is "audible" | "blocked" (enabled, the browser blocks it) |
 * "off" (never enabled on this screen), which the push stream reports to the server (/metrics,
 * the alarms page). If the page stops getting updates from the server for 2.5 s (.staleMs),
 * the screen says so and sounds a medium (technical) alarm: a frozen screen must not look
 * like a quiet bay.
 */
(function () {
  "use strict";

  var PATTERNS = {
    high: {onsets: [0, 0.18, 0.36, 0.72, 0.9, 1.9, 2.08, 2.26, 2.62, 2.8],
           pulse: 0.13, repeat: 6.0, freq: 880},
    medium: {onsets: [0, 0.3, 0.6], pulse: 0.2, repeat: 9.0, freq: 660},
    low: {onsets: [0, 0.4], pulse: 0.25, repeat: 20.0, freq: 523.25}
  };

  var REMEMBER = "chairside-sound";  // localStorage key: "on" once enabled on this screen

  var ctx = null;
  var wave = null;
  var timer = null;

  var audio = {
    state: "silent",      // what sounds now (effective, including a lost connection)
    requested: "silent",  // what the server asked for at the last update
    enabled: false,       // unlocked by a user gesture
    disconnected: false,  // no update from the server for staleMs
    bursts: 0,            // bursts played since the page loaded
    lastUpdate: 0,        // Date.now() of the last update from the server
    staleMs: 2500,        // no update for this long: the screen says it is disconnected

    /* Start (or resume) the AudioContext and remember the choice. Within a user gesture
     * the browser always lets it run; without one (a remembered choice, on load) only with
     * autoplay allowed, else it stays suspended until the next click on the bar. */
    enable: function () {
      var Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) { return false; }
      if (!ctx) {
        ctx = new Ctx();
        // a fundamental and four harmonics, as IEC 60601-1-8 asks of alarm tones
        wave = ctx.createPeriodicWave(new Float32Array([0, 0, 0, 0, 0, 0]),
                                      new Float32Array([0, 1, 0.55, 0.4, 0.3, 0.22]));
        ctx.onstatechange = showState;
      }
      if (ctx.state !== "running" && ctx.resume) {
        var resumed = ctx.resume();
        if (resumed && resumed.then) { resumed.then(showState, showState); }
      }
      audio.enabled = true;
      remember();
      restart();
      showState();
      return true;
    },

    set: function (state) {
      audio.lastUpdate = Date.now();
      audio.requested = PATTERNS[state] ? state : "silent";
      if (audio.disconnected) {
        audio.disconnected = false;
        document.body.classList.remove("disconnected");
      }
      apply(audio.requested);
    },

    /* A tone would be heard now (whether or not one is asked for). */
    audible: function () {
      return audio.enabled && ctx !== null && ctx.state === "running";
    },

    status: function () {
      if (audio.audible()) { return "audible"; }
      return audio.enabled ? "blocked" : "off";
    }
  };

  function remember() {
    try { window.localStorage.setItem(REMEMBER, "on"); } catch (e) { /* storage disabled */ }
  }

  function remembered() {
    if (/[?&]sound=on(&|$)/.test(window.location.search)) { return true; }
    try { return window.localStorage.getItem(REMEMBER) === "on"; } catch (e) { return false; }
  }

  /* The header bar: shown whenever a tone would not be heard. */
  function showState() {
    if (document.body) { document.body.classList.toggle("sound-off", !audio.audible()); }
  }

  function apply(state) {
    if (state === audio.state) { return; }
    audio.state = state;
    restart();
  }

  function restart() {
    if (timer !== null) { clearTimeout(timer); timer = null; }
    if (audio.state === "silent") { return; }
    loop();
  }

  function loop() {
    var p = PATTERNS[audio.state];
    if (!p) { return; }
    burst(p);
    timer = setTimeout(loop, p.repeat * 1000);
  }

  function burst(p) {
    if (!audio.enabled || ctx === null) { return; }
    if (ctx.state !== "running" && ctx.resume) { ctx.resume(); }
    var t0 = ctx.currentTime + 0.02;
    p.onsets.forEach(function (onset) {
      var osc = ctx.createOscillator();
      var gain = ctx.createGain();
      osc.setPeriodicWave(wave);
      osc.frequency.value = p.freq;
      var a = t0 + onset;
      var b = a + p.pulse;
      gain.gain.setValueAtTime(0, a);
      gain.gain.linearRampToValueAtTime(0.22, a + 0.015);  // rise, then fall: no clicks
      gain.gain.setValueAtTime(0.22, b - 0.02);
      gain.gain.linearRampToValueAtTime(0, b);
      osc.connect(gain);
      gain.connect(ctx.destination);
      osc.start(a);
      osc.stop(b + 0.01);
    });
    audio.bursts += 1;
  }

  setInterval(function () {
    if (audio.lastUpdate && !audio.disconnected && Date.now() - audio.lastUpdate > audio.staleMs) {
      audio.disconnected = true;
      document.body.classList.add("disconnected");
      apply(audio.requested === "high" ? "high" : "medium");
    }
  }, 250);

  window.chairsideAudio = audio;
  if (remembered()) { audio.enable(); } else { showState(); }
})();
