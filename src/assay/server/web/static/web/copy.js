/* Copy buttons: <button data-copy="ID" hidden> copies the text of element ID to the clipboard.
 *
 * Without this script (or without the clipboard API, e.g. on plain HTTP) the button stays hidden and the
 * text stays selectable, so nothing offered can fail. After a copy the button says "Copied" for a few
 * seconds; a status region beside it says so to screen readers too.
 */
(function () {
  "use strict";
  if (!navigator.clipboard || !window.isSecureContext) return;
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source) return;
    var label = button.textContent;
    var status = document.getElementById(button.getAttribute("data-copy") + "-copied");
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(source.textContent.trim()).then(function () {
        button.textContent = "Copied";
        button.classList.add("copied");
        if (status) status.textContent = "Copied to the clipboard.";
        setTimeout(function () {
          button.textContent = label;
          button.classList.remove("copied");
          if (status) status.textContent = "";
        }, 4000);
      }, function () {
        if (status) status.textContent = "The browser did not allow copying: select the text and copy it yourself.";
      });
    });
  });
})();
