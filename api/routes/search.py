"""The search routes: by text (GET and POST), by image, more like an image; facets and fields."""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, File, Form, Query, UploadFile
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from api.deps import (
    ImageId,
    LibraryDep,
    read_upload,
    validate_query,
)
from engine.library import Library
from engine.media.originals import query_image
from engine.search import SearchResponse
from engine.search.request import (
    DEFAULT_SORT,
    ClauseText,
    Fusion,
    ImageIdText,
    Mode,
    Order,
    SearchRequest,
    limits_of,
)  # fmt: skip

Where = Annotated[
    tuple[ClauseText, ...],
    Query(
        **limits_of("where"),
        description="filter clauses, all must hold: brand=Audi, year>=2014, topic in [a,b]",
    ),
]


Examples = Annotated[
    tuple[ImageIdText, ...],
    Query(
        **limits_of("positive"),
        description="image ids for feedback: more like these (positive), unlike those",
    ),
]
HitCount = Annotated[int, Query(**limits_of("k"))]


def run_search(lib: Library, search: SearchRequest) -> dict:
    """Search or browse as the request says; every bad part is a 422 with the reason."""
    query = validate_query(search.q, lib.settings) if search.q.strip() else ""
    return hits_json(lib.search(search.model_copy(update={"q": query})))


def hits_json(response: SearchResponse) -> dict:
    """A search response with URLs for each hit's thumbnail, file and page."""
    data = response.to_dict()
    for hit in data["hits"]:
        hit["thumbnail_url"] = f"/api/images/{hit['id']}/thumbnail?size=256"
        hit["image_url"] = f"/api/images/{hit['id']}/file"
        hit["page_url"] = f"/images/{hit['id']}"
    return data


def add_search_routes(app: FastAPI, library: Library) -> None:
    """Search, browse, facets, fields, search by image, similar images."""

    @app.get("/api/search")
    def search(
        lib: LibraryDep,
        q: Annotated[
            str, Query(**limits_of("q"), description="text query; empty: browse the filtered images")
        ] = "",
        mode: Mode = "hybrid",
        k: HitCount = 10,
        offset: Annotated[int, Query(**limits_of("offset"))] = 0,
        weights: Annotated[
            str | None, Query(**limits_of("weights"), description="e.g. image=1,text=2")
        ] = None,
        where: Where = (),
        fusion: Annotated[
            Fusion | None, Query(description="fixed or adaptive channel weights (default ADSEARCH_FUSION)")
        ] = None,
        sort: Annotated[
            str, Query(**limits_of("sort"), description="browse order: an indexed field")
        ] = DEFAULT_SORT,
        order: Order = "desc",
        diverse: Annotated[bool, Query(description="maximal marginal relevance: no near-copies")] = False,
        positive: Examples = (),
        negative: Examples = (),
    ) -> dict:
        """Hybrid (or single-channel) search by text among the images matching every `where` clause
        (repeat it: `where=brand=Audi&where=year>=2014`); without `q`, the matching images in `sort`
        order. `total` counts the matching images when filtered or browsing."""
        try:
            search = SearchRequest(q=q, mode=mode, k=k, offset=offset, weights=weights, where=list(where),
                                   sort=sort, order=order, diverse=diverse, positive=list(positive),
                                   negative=list(negative), fusion=fusion)  # fmt: skip
        except ValidationError as exc:  # a limit the parameters above do not state: still the client's
            errors = [{**e, "loc": ("query", *e["loc"])} for e in exc.errors(include_url=False)]
            raise RequestValidationError(errors) from None
        return run_search(lib, search)

    @app.post("/api/search")
    def search_json(lib: LibraryDep, search: SearchRequest) -> dict:
        """The same search with a JSON body, for long filters."""
        return run_search(lib, search)

    add_facet_and_image_routes(app, library)


def add_facet_and_image_routes(app: FastAPI, library: Library) -> None:
    """Facets, fields, search by an uploaded image, more like a stored image."""

    @app.get("/api/facets")
    def facets(
        lib: LibraryDep,
        field: Annotated[str, Query(min_length=1, max_length=64, description="a keyword or integer field")],
        where: Where = (),
        limit: Annotated[int, Query(ge=1, le=200)] = 20,
    ) -> dict:
        """How many images have each value of `field` among those matching the filters, most first
        (the counts do not depend on a query: a search ranks every matching image)."""
        return lib.facets(field, list(where), limit)

    @app.get("/api/fields")
    def fields(lib: LibraryDep) -> dict:
        """The fields filters and facets may name, with their types."""
        return {"fields": lib.fields()}

    @app.post(
        "/api/search/image",
        max_body_size=library.settings.max_upload_bytes + 2**16,
        form_limits={"max_files": 1, "max_fields": 8},
    )
    async def search_image(
        lib: LibraryDep,
        file: Annotated[UploadFile, File(description="query image")],
        mode: Annotated[Mode, Form()] = "hybrid",
        k: Annotated[int, Form(**limits_of("k"))] = 10,
    ) -> dict:
        """Search with an uploaded image (its OCR text feeds the text channels)."""
        data = await read_upload(file, lib.settings.max_upload_bytes)

        def search() -> SearchResponse:  # decoding and searching are CPU work: off the event loop
            return lib.search(SearchRequest(mode=mode, k=k), image=query_image(data, lib.settings))

        return hits_json(await run_in_threadpool(search))

    @app.get("/api/images/{image_id}/similar")
    def image_similar(lib: LibraryDep, image_id: ImageId, mode: Mode = "hybrid", k: HitCount = 10) -> dict:
        """More like this: the image's own vectors as the query."""
        return hits_json(lib.similar(image_id, mode=mode, k=k))
