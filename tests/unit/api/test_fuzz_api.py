"""Schemathesis against the app's own OpenAPI spec: generated requests never get a 5xx, and every
search answer carries finite scores in ranking order."""

from __future__ import annotations

import json
import math
import warnings

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api import create_app
from engine.channels import fused_names
from engine.search import SearchRequest

EXAMPLES_PER_OPERATION = 150
SEARCH_PATHS = ("/api/search", "/api/search/image", "/api/images/{image_id}/similar")
# The in-process client says Host: testserver, which the Host guard turns away; use a served name.
BASE_URL = "http://127.0.0.1"

CHANNELS = fused_names()


def load_schema(api_library):
    return schemathesis.openapi.from_asgi(
        "/openapi.json", create_app(api_library), headers={"Host": "127.0.0.1"}
    )


def asked_for_mmr(case) -> bool:
    """Whether the request asked for diverse (MMR) results, in the query string or the JSON body."""
    sources = (case.query, case.body)
    return any(isinstance(s, dict) and str(s.get("diverse", "")).lower() in ("true", "1") for s in sources)


def check_search_scores(case, response) -> bool:
    """For a 2xx answer of a search operation: every score (fused and per channel) is a finite
    number and the fused scores do not increase down the list. True when it checked hits."""
    if case.operation.path not in SEARCH_PATHS or not 200 <= response.status_code < 300:
        return False
    hits = response.json()["hits"]
    for hit in hits:
        for where, score in [("score", hit["score"])] + [(c, m["score"]) for c, m in hit["channels"].items()]:
            finite = isinstance(score, int | float) and not isinstance(score, bool) and math.isfinite(score)
            assert finite, (case.operation.label, case.query, hit["rank"], where, score)
    scores = [hit["score"] for hit in hits]
    if not asked_for_mmr(
        case
    ):  # MMR orders by relevance and novelty together; its scores are the relevance alone
        assert all(a >= b for a, b in zip(scores, scores[1:], strict=False)), (case.query, scores)
    return bool(hits)


def test_generated_requests_never_get_a_server_error(api_library):
    schema = load_schema(api_library)
    statuses: list[int] = []
    checked: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
            suppress_health_check=list(HealthCheck),
        )  # fmt: skip
        def no_server_error(case):
            response = case.call(base_url=BASE_URL)
            statuses.append(response.status_code)
            assert response.status_code < 500, (
                case.operation.label,
                response.status_code,
                response.text[:300],
            )
            if check_search_scores(case, response):
                checked.append(case.operation.path)

        no_server_error()
    assert len(statuses) >= 1000, len(statuses)
    assert any(s < 300 for s in statuses) and any(400 <= s < 500 for s in statuses)  # both paths exercised
    assert "/api/search" in checked  # the score check saw real hits


# weights as a client could send them: known channels (repeated at times) with any float spelling,
# nan and inf included, or junk; the kind of value that once gave 200 with null scores
WEIGHT = st.one_of(
    st.floats(min_value=0, max_value=1000).map(repr),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["nan", "inf", "-inf", "1e309", "1e39", "0", "1000", "-1", "abc"]),
)
WEIGHTS = st.lists(st.tuples(st.sampled_from([*CHANNELS, "bogus"]), WEIGHT), min_size=1, max_size=3).map(
    lambda parts: ",".join(f"{name}={value}" for name, value in parts)
)


def test_search_with_generated_weights_gives_finite_ordered_scores_or_422(api_library):
    schema = load_schema(api_library)
    operation = schema["/api/search"]["GET"]
    statuses: list[int] = []

    @given(case=operation.as_strategy(), weights=WEIGHTS, q=st.sampled_from(["burger", "car deal", "sale"]))
    @settings(max_examples=200, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def finite_scores(case, weights, q):
        kept = {k: v for k, v in (case.query or {}).items() if k in ("mode", "k")}  # weights decide alone
        if (
            kept.get("mode") == "duplicate"
        ):  # copies of an image: a text query is refused whatever the weights
            kept.pop("mode")
        case.query = {**kept, "q": q, "weights": weights}  # first page, so there are scores to check
        response = case.call(base_url=BASE_URL)
        statuses.append(response.status_code)
        assert response.status_code in (200, 422), (case.query, response.status_code, response.text[:300])
        detail = response.json().get("detail") if response.status_code == 422 else None
        if isinstance(detail, str):  # not a parameter FastAPI refused itself: the weights were
            assert "bad weight" in detail, (case.query, detail)
        check_search_scores(case, response)

    finite_scores()
    assert statuses.count(200) >= 20 and statuses.count(422) >= 20, statuses


# ---------------------------------------------------------------------- inputs that once gave 500
# (issue 21): non-finite numbers in JSON bodies, long query-string parameters, filter values of any
# kind on fields of every type. Through the app in-process, as schemathesis calls it.


def client(api_library):
    with warnings.catch_warnings():  # the test client's note that it would rather use httpx2
        warnings.filterwarnings("ignore", message=".*httpx.*testclient")
        from starlette.testclient import TestClient

    return TestClient(create_app(api_library), base_url=BASE_URL, raise_server_exceptions=False)


def strict_json(response) -> object:
    """The answer's JSON, refusing NaN and Infinity (which no strict JSON parser accepts)."""

    def refuse(constant):
        raise AssertionError(f"{constant} in the answer: not JSON")

    return json.loads(response.text, parse_constant=refuse)


NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])
JSON_SCALAR = st.one_of(
    NON_FINITE,
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.text(max_size=20),
    st.sampled_from(["\ud800", "a\udfffb", "\x00"]),  # lone surrogates: valid JSON, not valid text
    st.booleans(),
    st.none(),
)
JSON_VALUE = st.recursive(JSON_SCALAR, lambda inner: st.lists(inner, max_size=3), max_leaves=6)
BODY_KEYS = list(SearchRequest.model_fields)


@given(body=st.dictionaries(st.sampled_from(BODY_KEYS), JSON_VALUE, max_size=4), nan=NON_FINITE,
       key=st.sampled_from(BODY_KEYS), nested=st.booleans())  # fmt: skip
@settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_json_bodies_with_nan_or_infinity_are_422_in_strict_json(api_library, body, nan, key, nested):
    body = {**body, key: [nan] if nested else nan}  # at least one non-finite number somewhere
    http = client(api_library)
    text = json.dumps(body, allow_nan=True)  # NaN, Infinity, -Infinity: what Python's json reads
    answer = http.post("/api/search", content=text, headers={"content-type": "application/json"})
    assert answer.status_code == 422, (text, answer.status_code, answer.text[:300])
    detail = strict_json(answer)["detail"]
    assert isinstance(detail, list) and detail and all("msg" in error for error in detail), detail


def test_the_422_of_a_nan_says_where_and_keeps_the_input_as_text(api_library):
    http = client(api_library)
    json_type = {"content-type": "application/json"}
    answer = http.post(
        "/api/search", content=b'{"q": "car", "k": NaN, "where": [Infinity]}', headers=json_type
    )
    assert answer.status_code == 422, answer.text
    errors = {tuple(e["loc"]): e for e in strict_json(answer)["detail"]}
    assert errors[("body", "k")]["input"] == "NaN"
    assert errors[("body", "where", 0)]["input"] == "Infinity"
    surrogate = http.post("/api/search", content=b'{"q": "\\ud800"}', headers=json_type)
    assert surrogate.status_code == 422 and strict_json(surrogate)["detail"][0]["input"] == "\\ud800"


LONG_TEXT = st.one_of(
    st.text(min_size=400, max_size=3000),
    st.integers(min_value=490, max_value=5000).map(lambda n: "format=" + "P" * n),
    st.integers(min_value=490, max_value=5000).map(lambda n: "brand in [" + "a," * (n // 2) + "b]"),
)


GET_PATHS = ["/api/search", "/api/facets", "/", "/api/images/00000000-0000-0000-0000-000000000000/similar"]


@given(param=st.sampled_from(["q", "where", "weights", "sort", "positive", "mode", "order", "field"]),
       value=LONG_TEXT, path=st.sampled_from(GET_PATHS))  # fmt: skip
@settings(max_examples=120, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_long_query_string_parameters_are_never_a_server_error(api_library, param, value, path):
    http = client(api_library)
    params = {"field": "format", param: value} if path == "/api/facets" else {param: value}
    answer = http.get(path, params=params)
    assert answer.status_code < 500, (path, param, len(value), answer.status_code, answer.text[:300])
    if path == "/api/search" and param == "where" and len(value) > 500:
        assert answer.status_code == 422, answer.text[:300]  # as the same clause in a JSON body


def test_a_where_clause_over_500_characters_is_422_by_get_and_by_post(api_library):
    http = client(api_library)
    clause = "format=" + "P" * 600
    by_get = http.get("/api/search", params={"where": clause})
    by_post = http.post("/api/search", json={"where": [clause]})
    assert by_get.status_code == by_post.status_code == 422, (by_get.text[:300], by_post.text[:300])
    assert by_get.json()["detail"][0]["type"] == by_post.json()["detail"][0]["type"] == "string_too_long"
    assert http.get("/api/facets", params={"field": "format", "where": clause}).status_code == 422


FILTER_VALUE = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(allow_nan=False, allow_infinity=False).map(str),
    st.integers(min_value=-(2**80), max_value=2**80).map(str),
    st.sampled_from([str(2**63), str(-(2**63) - 1), str(2**63 - 1), str(-(2**63)), "1e400", "-0.0", "1_000",
                     "2014-03-01", "0001-01-01T00:00:00-12:00", "9999-12-31T23:59:59+14:00", "true", "''"]),
    st.text(max_size=12),
)  # fmt: skip
FILTER_OP = st.sampled_from(["=", "!=", ">=", "<=", ">", "<", " in ", " not in "])


@given(data=st.data())
@settings(max_examples=200, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_filter_values_of_any_kind_on_every_field_are_an_answer_or_a_422(api_library, data):
    fields = sorted(api_library.fields())  # keyword, integer, float, datetime and bool fields
    field, op = data.draw(st.sampled_from(fields)), data.draw(FILTER_OP)
    values = data.draw(st.lists(FILTER_VALUE, min_size=1, max_size=3))
    clause = f"{field}{op}[{', '.join(values)}]" if "in" in op else f"{field}{op}{values[0]}"
    http = client(api_library)
    for answer in (
        http.get("/api/search", params={"where": clause}),
        http.post("/api/search", json={"q": "sale", "where": [clause]}),
        http.get("/api/facets", params={"field": "format", "where": clause}),
    ):
        assert answer.status_code in (200, 422), (clause, answer.status_code, answer.text[:300])
        strict_json(answer)
    page = http.get("/", params={"where": clause})
    assert page.status_code == 200, (clause, page.status_code)
