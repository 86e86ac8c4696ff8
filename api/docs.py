"""The OpenAPI docs page, Swagger UI served from the installed ``swagger-ui-bundle-v2`` package: no CDN.

FastAPI's own page loads Swagger UI from a CDN and starts it with an inline script, so
on a closed network, or under a CSP without 'unsafe-inline', it shows nothing. Here the
assets come from this server and the start-up script is a file, so the page keeps the
same strict CSP as the rest of the service.
"""
from __future__ import annotations

from html import escape

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

# Relative URLs, so the page also works behind a path prefix. validatorUrl: null keeps
# Swagger UI from fetching a badge from validator.swagger.io.
INIT_JS = """window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  });
});
"""

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<link rel="stylesheet" href="docs/assets/swagger-ui.css">
<link rel="icon" type="image/png" href="docs/assets/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/assets/swagger-ui-bundle.js"></script>
<script src="docs/init.js"></script>
</body>
</html>
"""


def install(app: FastAPI) -> None:
    """``GET /docs``, its start-up script and the Swagger UI assets under ``/docs/assets``."""
    router = APIRouter(include_in_schema=False)
    page = PAGE.format(title=escape(f"{app.title} · API docs"))

    @router.get("/docs")
    def docs() -> HTMLResponse:
        return HTMLResponse(page)

    @router.get("/docs/init.js")
    def init() -> Response:
        return Response(INIT_JS, media_type="text/javascript; charset=utf-8")

    app.include_router(router)
    app.mount("/docs/assets", StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")
