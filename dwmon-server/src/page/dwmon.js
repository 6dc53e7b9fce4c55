// dwmon status page: reload every 10 s so new checks show up (the page works without it).
// Not while a form field has the focus, so typing a pause comment is never interrupted.
"use strict";
setInterval(function () {
  var active = document.activeElement;
  if (active && (active.tagName === "INPUT" || active.tagName === "TEXTAREA")) return;
  if (document.querySelector("details[open]")) return;
  location.reload();
}, 10000);
