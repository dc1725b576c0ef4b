"""The REST API in Glances's v4 layout: routes, payload shapes, and the OpenAPI document checked by schemathesis."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import psutil
import pytest

from pytest_memprof.sysstats.api import openapi
from pytest_memprof.sysstats.plugins import PLUGINS


def get(url: str):
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """One ``memprof sys -s`` for the module (routes only read), with an empty config file."""
    from .conftest import Server

    config = tmp_path_factory.mktemp("config") / "memprof.conf"
    config.write_text("")
    server = Server("-s", "-t", "0.2", "--port", "0", "-C", str(config))
    yield f"{server.url}/api/4"
    assert server.stop() == 0


def test_glances_routes_answer_with_glances_shapes(api):
    status, history = get(f"{api}/load/history")
    assert status == 200 and set(history) >= {"min1", "min5", "min15"}
    stamp, value = history["min1"][-1]
    assert stamp[:4].isdigit() and isinstance(value, float)
    get(f"{api}/load")  # one more sample (0.2 s later) for history/N
    status, points = get(f"{api}/load/min1/history/1")
    assert status == 200 and len(points) == 1 and len(points[0]) == 2
    assert get(f"{api}/mem/percent/description") == (200, PLUGINS["mem"].field("percent").description)
    assert get(f"{api}/mem/total/unit") == (200, PLUGINS["mem"].field("total").unit)
    status, views = get(f"{api}/load/views")
    assert status == 200 and set(views["min1"]) == {"decoration", "optional", "additional", "splittable", "hidden"}
    assert get(f"{api}/all/views")[0] == 200 and set(get(f"{api}/all/limits")[1]) == set(PLUGINS)
    assert get(f"{api}/load/limits")[0] == 200
    status, args = get(f"{api}/args")
    assert status == 200 and args["time"] == "0.2" and "password" not in args
    assert get(f"{api}/args/time") == (200, "0.2")
    assert get(f"{api}/help")[1]["hotkeys"]["q"].startswith("quit")
    assert get(f"{api}/config")[0] == 200
    status, lo = get(f"{api}/network/interface_name/value/lo")
    assert status == 200 and list(lo) == ["lo"]
    if lo["lo"]:
        assert get(f"{api}/network/bytes_recv_gauge/lo")[1]["bytes_recv_gauge"] >= 0
    status, top = get(f"{api}/processlist/top/2")
    assert status == 200 and len(top) == 2
    assert get(f"{api}/mem/total") == (200, {"total": psutil.virtual_memory().total})


@pytest.mark.parametrize(("path", "status", "listed"), [
    ("/nosuchplugin", 404, "plugins"),
    ("/mem/nosuchfield", 404, "fields"),
    ("/network/bytes_recv/nosuchif0", 404, "keys"),
    ("/load/history/soon", 400, None),
    ("/args/nosucharg", 404, "names"),
])
def test_errors_say_what_is_valid(api, path, status, listed):
    code, body = get(api + path)
    assert code == status and body["error"]
    if listed:
        assert body[listed], body


def test_the_openapi_document_is_served_and_lists_every_route(api):
    status, document = get(f"{api}/openapi.json")
    assert status == 200 and document == json.loads(json.dumps(openapi()))
    assert "/api/4/{plugin}/history/{nb}" in document["paths"]
    assert document["paths"]["/api/4/{plugin}"]["get"]["parameters"][0]["schema"]["enum"] == list(PLUGINS)


def test_the_api_conforms_to_its_openapi_document(api):
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings

    schema = schemathesis.openapi.from_dict(openapi())
    base = api.rsplit("/api/4", 1)[0]
    failures: list[str] = []
    calls = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        # Bounded: a few cases per operation, the same ones every run, all on 127.0.0.1.
        @settings(max_examples=6, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def check(case):
            nonlocal calls
            calls += 1
            try:
                case.call_and_validate(base_url=base, timeout=10)
            except Exception as error:  # collected, so one run reports every operation that fails
                failures.append(f"{case.method} {case.formatted_path}: {str(error).strip().splitlines()[0]}")
                raise

        try:
            check()
        except Exception:
            pass
    assert calls >= len(openapi()["paths"])
    assert not failures, "\n".join(dict.fromkeys(failures))
