// Sign-in: the token is kept in this tab's sessionStorage only (gone when the tab closes) and checked with /api/me.
"use strict";
(function () {
  const form = document.getElementById("login-form");
  const field = document.getElementById("token");
  const error = document.getElementById("login-error");

  async function signIn(token) {
    error.textContent = "";
    const resp = await fetch("/api/me", { headers: { Authorization: "Bearer " + token } });
    if (resp.ok) {
      sessionStorage.setItem("icd-token", token);
      location.replace("/");
      return;
    }
    let detail = "sign-in failed (HTTP " + resp.status + ")";
    try { detail = (await resp.json()).detail || detail; } catch (e) { /* not a problem document */ }
    error.textContent = detail;
  }

  form.addEventListener("submit", (ev) => { ev.preventDefault(); signIn(field.value.trim()); });
  // A sign-in link carries the token in the fragment (#token=...): never sent to the server, never in its logs.
  const m = location.hash.match(/token=([^&]+)/);
  if (m) {
    history.replaceState(null, "", location.pathname);
    field.value = decodeURIComponent(m[1]);
    signIn(field.value);
  }
})();
