/* A secret shown once in the admin (a new API token, webhook signing secrets): a click on
 * its field selects the whole value, ready to copy. A file rather than an onclick attribute,
 * because the Content-Security-Policy allows no inline script. */
"use strict";
document.addEventListener("click", (event) => {
  const field = event.target.closest ? event.target.closest("input[data-select-on-click]") : null;
  if (field) field.select();
});
