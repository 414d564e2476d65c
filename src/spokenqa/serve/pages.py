"""The routes that serve files, not JSON: the web page (``GET /`` and ``/static/{name}``, from
``static/``) and the API docs (``GET /docs``: Swagger UI over /openapi.json, its script and style
from the swagger-ui-bundle-v2 package, so the docs work offline like the page). Neither is in the
OpenAPI schema. Each response carries a Content-Security-Policy that allows only this server."""

from pathlib import Path

from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse
from starlette.exceptions import HTTPException
from swagger_ui_bundle import swagger_ui_path

STATIC = Path(__file__).parent / "static"
PAGE_FILES = {"index.html": "text/html", "app.js": "text/javascript", "style.css": "text/css"}
PAGE_HEADERS = {
    # Everything the page needs comes from this server.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
# Swagger UI at /docs: FastAPI's page with the assets of the swagger-ui-bundle-v2 package (no CDN).
# The page's one inline script starts Swagger UI; everything else must come from this server.
SWAGGER_UI = Path(swagger_ui_path)
DOCS_FILES = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css",
              "favicon-32x32.png": "image/png"}
DOCS_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

router = APIRouter(include_in_schema=False)


@router.get("/")
async def page():
    return FileResponse(STATIC / "index.html", media_type="text/html", headers=PAGE_HEADERS)


@router.get("/docs")
async def docs():
    page = get_swagger_ui_html(
        openapi_url="/openapi.json", title="spokenqa API", swagger_js_url="/docs/swagger-ui-bundle.js",
        swagger_css_url="/docs/swagger-ui.css", swagger_favicon_url="/docs/favicon-32x32.png",
        swagger_ui_parameters={"validatorUrl": None},  # Swagger UI's default sends the schema out
    )
    page.headers.update(DOCS_HEADERS)
    return page


@router.get("/docs/{name}")
async def docs_file(name: str):
    if name not in DOCS_FILES:
        raise HTTPException(404, f"no such file: /docs/{name}")
    return FileResponse(SWAGGER_UI / name, media_type=DOCS_FILES[name], headers=DOCS_HEADERS)


@router.get("/static/{name}")
async def static(name: str):
    if name not in PAGE_FILES:
        raise HTTPException(404, f"no such file: /static/{name}")
    return FileResponse(STATIC / name, media_type=PAGE_FILES[name], headers=PAGE_HEADERS)
