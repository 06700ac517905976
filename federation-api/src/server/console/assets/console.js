// Causeway console: live refresh of the sections marked data-live, keyboard
// shortcuts, and sign-in from a URL fragment (#token=...). Reads only: the
// one request it makes is GET of the page already shown.
"use strict";
(function () {
  var body = document.body;
  var view = body && body.dataset.view;

  // Sign-in page: a token in the fragment (printed by local-federation.sh)
  // fills the form and submits it; the fragment never reaches a server log.
  if (view === "login") {
    var m = /(?:^|[#&])token=([^&]+)/.exec(location.hash);
    var form = document.getElementById("login");
    if (m && form) {
      history.replaceState(null, "", location.pathname);
      form.elements.token.value = decodeURIComponent(m[1]);
      form.submit();
    }
    return;
  }

  var status = document.getElementById("live");
  function say(text) { if (status) { status.textContent = text; } }

  var inflight = false, again = false;
  function refresh() {
    if (inflight) { again = true; return; }
    inflight = true;
    fetch(location.pathname + location.search, { credentials: "same-origin", headers: { "Accept": "text/html", "X-Console-Live": "1" } })
      .then(function (r) {
        if (r.status === 401 || r.status === 403) { location.reload(); throw new Error("signed out"); }
        return r.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-live]").forEach(function (old) {
          var fresh = old.id && doc.getElementById(old.id);
          if (fresh) { old.replaceWith(document.importNode(fresh, true)); }
        });
        say("live · updated " + new Date().toLocaleTimeString());
      })
      .catch(function () { say("live · refresh failed, retrying"); })
      .finally(function () {
        inflight = false;
        if (again) { again = false; refresh(); }
      });
  }

  if (window.EventSource) {
    var es = new EventSource("/ui/events");
    es.addEventListener("hello", function () { say("live"); });
    es.addEventListener("change", refresh);
    es.addEventListener("tick", refresh);
    es.onerror = function () { say("live · reconnecting"); };
  }

  // 1-5 switch views, r refreshes; never while typing.
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) { return; }
    var t = e.target;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) { return; }
    var link = document.querySelector('nav a[data-key="' + e.key + '"]');
    if (link) { e.preventDefault(); location.href = link.href; return; }
    if (e.key === "r") { e.preventDefault(); refresh(); }
  });
})();
