// Live parts of a console page: an element with data-refresh="URL" is replaced by what URL
// answers (a fragment of the same page), every data-every seconds, without reloading the page.
// A failed fetch keeps the old content and marks it stale; a login that ended reloads the page
// (which then redirects to the login form).
(function () {
  function refresh(el) {
    fetch(el.dataset.refresh, {credentials: "same-origin", headers: {"Accept": "text/html"}, redirect: "manual"})
      .then(function (r) {
        if (r.type === "opaqueredirect" || r.status === 401) { location.reload(); return null; }
        if (!r.ok) { throw new Error(r.status); }
        return r.text();
      })
      .then(function (html) {
        if (html === null) { return; }
        el.innerHTML = html;
        el.classList.remove("stale");
      })
      .catch(function () { el.classList.add("stale"); });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-refresh]").forEach(function (el) {
      var every = Math.max(1, parseInt(el.dataset.every || "5", 10)) * 1000;
      setInterval(function () { refresh(el); }, every);
    });
  });
})();
