// Starts ReDoc on /api/redoc/ (templates/api_docs/redoc.html): a file, not an inline script, for
// the Content-Security-Policy. The schema URL and ReDoc's settings come from the container.

const container = document.getElementById("redoc-container");
Redoc.init(container.dataset.schemaUrl, JSON.parse(container.dataset.settings), container);
