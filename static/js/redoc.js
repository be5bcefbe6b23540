// Starts ReDoc on /api/redoc/ (templates/api_docs/redoc.html): a file, not an inline script, for
// the Content-Security-Policy. The schema URL and ReDoc's settings come from the container.

// ReDoc's menu always ends in "API docs by Redocly" with a logo from cdn.redoc.ly, and no option
// turns the logo off; the page loads nothing from another host. React gives an <img> its src with
// setAttribute and then again through the src property (either starts the download), so both
// are wrapped to replace that one source by an empty image; api_docs.css hides it.
const REDOCLY_CDN = "https://cdn.redoc.ly/";
const EMPTY_IMAGE = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg'/%3E";
const local = (value) => (String(value).startsWith(REDOCLY_CDN) ? EMPTY_IMAGE : value);

const setAttribute = Element.prototype.setAttribute;
Element.prototype.setAttribute = function (name, value) {
  const image = this instanceof HTMLImageElement && name.toLowerCase() === "src";
  return setAttribute.call(this, name, image ? local(value) : value);
};
const src = Object.getOwnPropertyDescriptor(HTMLImageElement.prototype, "src");
Object.defineProperty(HTMLImageElement.prototype, "src", {
  ...src,
  set(value) {
    src.set.call(this, local(value));
  },
});

const container = document.getElementById("redoc-container");
Redoc.init(container.dataset.schemaUrl, JSON.parse(container.dataset.settings), container);
