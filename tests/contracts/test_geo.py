"""Coverage areas: GeoJSON (RFC 7946) validated as a GIS tool would, and the `covers=LON,LAT` filter.

Unit tests of `contracts.geo` (a corpus of valid and invalid GeoJSON, with the JSON path and the
message of each fault; `covers`; `bounding_box`), then the API: 422 naming the path on POST and
PATCH, valid coverage stored and returned exactly as given, and `GET /api/v1/contracts?covers=`.
"""

import copy
import json

import pytest
from model_bakery import baker

from contracts.geo import CoverageError, bounding_box, covers, validate_coverage
from contracts.models import Contract, Counterparty

URL = "/api/v1/contracts"


def ring(*positions):
    """A closed ring from its distinct corners."""
    return [list(p) for p in positions] + [list(positions[0])]


def square(lon, lat, size):
    return ring((lon, lat), (lon + size, lat), (lon + size, lat + size), (lon, lat + size))


def polygon(*rings):
    return {"type": "Polygon", "coordinates": list(rings)}


def multipolygon(*polygons):
    return {"type": "MultiPolygon", "coordinates": [list(rings) for rings in polygons]}


def feature(geometry, **properties):
    return {"type": "Feature", "properties": properties or None, "geometry": geometry}


def collection(*features):
    return {"type": "FeatureCollection", "features": list(features)}


# A 10x10 square around Amsterdam-ish coordinates with a 2x2 hole in its middle.
SHELL = square(0, 40, 10)
HOLE = square(4, 44, 2)
DONUT = polygon(SHELL, HOLE)
# An area across the antimeridian, split at +/-180 as RFC 7946 3.1.9 asks (Fiji-ish).
FIJI = multipolygon(
    [ring((170, -20), (180, -20), (180, -10), (170, -10))],
    [ring((-180, -20), (-175, -20), (-175, -10), (-180, -10))],
)
BOWTIE = ring((0, 0), (10, 10), (10, 0), (0, 10))
CRS84 = {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}}
WEB_MERCATOR = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::3857"}}

VALID = {
    "polygon": polygon(square(4, 52, 1)),
    "polygon with a hole": DONUT,
    "polygon with two holes": polygon(SHELL, square(1, 41, 1), square(7, 47, 2)),
    "hole touching the shell at one point": polygon(SHELL, ring((0, 45), (3, 44), (3, 46))),
    "clockwise shell (RFC 7946: parsers should not reject)": polygon(SHELL[::-1]),
    "multipolygon": multipolygon([square(0, 0, 1)], [square(5, 5, 1)]),
    "multipolygon split at the antimeridian": FIJI,
    "positions on the antimeridian and the poles": polygon(ring((-180, 80), (180, 80), (180, 90), (-180, 90))),
    "whole world": polygon(ring((-180, -90), (180, -90), (180, 90), (-180, 90))),
    "positions with altitude": polygon([[0, 0, 10], [1, 0, 10], [1, 1, 12.5], [0, 1, 0], [0, 0, 10]]),
    "altitude on some positions only": polygon([[0, 0, 10], [1, 0], [1, 1], [0, 1, 3], [0, 0]]),
    "float coordinates": polygon(ring((4.8952, 52.3702), (4.9, 52.3702), (4.9, 52.38), (4.8952, 52.38))),
    "feature": feature(polygon(square(0, 0, 1)), name="north"),
    "feature with a multipolygon": feature(FIJI),
    "feature collection": collection(feature(polygon(square(0, 0, 1))), feature(FIJI)),
    "overlapping features (each geometry valid)": collection(
        feature(polygon(square(0, 0, 2))), feature(polygon(square(1, 1, 2)))
    ),
    "explicit default crs": {**polygon(square(0, 0, 1)), "crs": CRS84},
    "default crs by its short name": {
        **polygon(square(0, 0, 1)),
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC::CRS84"}},
    },
    "default crs on a feature collection": {**collection(feature(polygon(square(0, 0, 1)))), "crs": CRS84},
    "bbox and foreign members": {**polygon(square(0, 0, 1)), "bbox": [0, 0, 1, 1], "title": "depot"},
    "feature with an id and nested properties": {
        **feature(polygon(square(0, 0, 1))),
        "id": "zone-7",
        "properties": {"name": "Zone 7", "tags": ["a", "b"], "sla": {"hours": 4}},
    },
}


@pytest.mark.parametrize("value", VALID.values(), ids=VALID.keys())
def test_valid_coverage(value):
    before = copy.deepcopy(value)
    assert validate_coverage(value) is None
    assert value == before  # validation never rewrites what was given


# (value, {path: a fragment of its message}): exactly these paths, each with that fragment.
INVALID = {
    # --- structure and types ---
    "not an object (list)": ([SHELL], {"coverage_areas": "must be an object"}),
    "not an object (string)": ("POLYGON((0 0, 1 0, 1 1, 0 0))", {"coverage_areas": "must be an object"}),
    "no type": ({"coordinates": [SHELL]}, {"coverage_areas.type": "got None"}),
    "lower-case type": ({"type": "polygon", "coordinates": [SHELL]}, {"coverage_areas.type": "got 'polygon'"}),
    "point": ({"type": "Point", "coordinates": [1, 2]}, {"coverage_areas.type": "got 'Point'"}),
    "line string": (
        {"type": "LineString", "coordinates": [[0, 0], [1, 1]]},
        {"coverage_areas.type": "got 'LineString'"},
    ),
    "geometry collection": (
        {"type": "GeometryCollection", "geometries": [polygon(SHELL)]},
        {"coverage_areas.type": "got 'GeometryCollection'"},
    ),
    "feature without geometry": (feature(None), {"coverage_areas.geometry": "must be an object"}),
    "feature with a point": (
        feature({"type": "Point", "coordinates": [1, 2]}),
        {"coverage_areas.geometry.type": "Expected Polygon or MultiPolygon, got 'Point'"},
    ),
    "empty feature collection": (collection(), {"coverage_areas.features": "non-empty list"}),
    "features not a list": (
        {"type": "FeatureCollection", "features": {"0": feature(polygon(SHELL))}},
        {"coverage_areas.features": "non-empty list"},
    ),
    "a geometry where a feature belongs": (
        collection(feature(polygon(SHELL)), polygon(SHELL)),
        {"coverage_areas.features[1].type": "Expected a Feature"},
    ),
    "no coordinates": ({"type": "Polygon"}, {"coverage_areas.coordinates": "non-empty list of linear rings"}),
    "no rings": (polygon(), {"coverage_areas.coordinates": "non-empty list of linear rings"}),
    "empty multipolygon": ({"type": "MultiPolygon", "coordinates": []}, {"coverage_areas.coordinates": "non-empty"}),
    "ring not a list": (polygon("0 0, 1 0, 1 1, 0 0"), {"coverage_areas.coordinates[0]": "list of positions"}),
    # --- positions ---
    "longitude out of range": (
        polygon(ring((179, 0), (180.5, 0), (180.5, 1), (179, 1))),
        {"coverage_areas.coordinates[0][1]": "Longitude 180.5 is out of range [-180, 180]"},
    ),
    "antimeridian crossed by continuing past 180": (
        polygon(ring((170, -20), (190, -20), (190, -10), (170, -10))),
        {"coverage_areas.coordinates[0][1]": "Longitude 190 is out of range"},
    ),
    "latitude out of range": (
        polygon(ring((0, 0), (1, 0), (1, -90.5), (0, 0.5))),
        {"coverage_areas.coordinates[0][2]": "Latitude -90.5 is out of range [-90, 90]"},
    ),
    "lat/lon swapped (latitude 120)": (
        polygon(ring((52, 4), (52, 120), (53, 120), (53, 4))),
        {"coverage_areas.coordinates[0][1]": "Latitude 120 is out of range"},
    ),
    "position with one number": (
        polygon([[0, 0], [1], [1, 1], [0, 1], [0, 0]]),
        {"coverage_areas.coordinates[0][1]": "A position is [longitude, latitude]"},
    ),
    "position with four numbers": (
        polygon([[0, 0, 0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]),
        {"coverage_areas.coordinates[0][0]": "A position is [longitude, latitude]"},
    ),
    "position as an object": (
        polygon([{"lon": 0, "lat": 0}, [1, 0], [1, 1], [0, 0]]),
        {"coverage_areas.coordinates[0][0]": "A position is"},
    ),
    "coordinates as strings": (
        polygon([["0", "0"], [1, 0], [1, 1], [0, 0]]),
        {"coverage_areas.coordinates[0][0]": "must be numbers"},
    ),
    "coordinates as booleans": (
        polygon([[0, 0], [True, False], [1, 1], [0, 0]]),
        {"coverage_areas.coordinates[0][1]": "must be numbers"},
    ),
    "null position": (polygon([[0, 0], None, [1, 1], [0, 0]]), {"coverage_areas.coordinates[0][1]": "A position"}),
    "polygon-depth coordinates in a multipolygon": (
        {"type": "MultiPolygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]},
        {f"coverage_areas.coordinates[0][{i}][0]": "A position is" for i in range(4)},
    ),
    # --- rings ---
    "unclosed ring": (
        polygon([[0, 0], [10, 0], [10, 10], [0, 10]]),
        {"coverage_areas.coordinates[0]": "must be closed"},
    ),
    "unclosed hole": (
        polygon(SHELL, HOLE[:-1]),
        {"coverage_areas.coordinates[1]": "must be closed"},
    ),
    "ring of three positions": (
        polygon([[0, 0], [1, 1], [0, 0]]),
        {"coverage_areas.coordinates[0]": "at least four positions"},
    ),
    "empty ring": (polygon([]), {"coverage_areas.coordinates[0]": "at least four positions"}),
    "collapsed ring (no area)": (
        polygon([[0, 0], [1, 1], [0, 0], [0, 0]]),
        {"coverage_areas.coordinates[0]": "Too few points"},
    ),
    # --- validity ---
    "bowtie": (polygon(BOWTIE), {"coverage_areas.coordinates[0]": "Ring Self-intersection"}),
    "spike": (
        polygon(ring((0, 0), (10, 0), (10, 10), (5, 10), (5, 20), (5, 10), (0, 10))),
        {"coverage_areas.coordinates[0]": "Ring Self-intersection"},
    ),
    "bowtie hole": (
        polygon(SHELL, ring((2, 42), (4, 44), (4, 42), (2, 44))),
        {"coverage_areas.coordinates[1]": "Ring Self-intersection"},
    ),
    "bowtie in the second polygon of a multipolygon": (
        multipolygon([square(20, 0, 1)], [BOWTIE]),
        {"coverage_areas.coordinates[1][0]": "Ring Self-intersection"},
    ),
    "hole outside the shell": (
        polygon(SHELL, square(20, 20, 1)),
        {"coverage_areas.coordinates": "Hole lies outside shell"},
    ),
    "hole crossing the shell": (
        polygon(SHELL, ring((5, 45), (15, 45), (15, 46), (5, 46))),
        {"coverage_areas.coordinates": "Self-intersection"},
    ),
    "nested holes": (
        polygon(SHELL, square(2, 42, 6), square(3, 43, 1)),
        {"coverage_areas.coordinates": "Invalid geometry"},
    ),
    "overlapping polygons of a multipolygon": (
        multipolygon([square(0, 0, 10)], [square(5, 5, 10)]),
        {"coverage_areas.coordinates": "must not overlap"},
    ),
    "polygons of a multipolygon that share part of an edge": (
        multipolygon([ring((170, -20), (180, -20), (180, -10), (170, -10))], [square(165, -20, 5)]),
        {"coverage_areas.coordinates": "must not overlap or share an edge"},
    ),
    # --- crs ---
    "web mercator crs": ({**polygon(SHELL), "crs": WEB_MERCATOR}, {"coverage_areas.crs": "WGS 84"}),
    "EPSG::4326 (latitude first)": (
        {**polygon(SHELL), "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4326"}}},
        {"coverage_areas.crs": "WGS 84"},
    ),
    "linked crs": (
        {**polygon(SHELL), "crs": {"type": "link", "properties": {"href": "http://example.com/crs"}}},
        {"coverage_areas.crs": "WGS 84"},
    ),
    "crs as a string": ({**polygon(SHELL), "crs": "EPSG:3857"}, {"coverage_areas.crs": "WGS 84"}),
    "crs with properties that are not an object": (
        {**polygon(SHELL), "crs": {"type": "name", "properties": "EPSG:3857"}},
        {"coverage_areas.crs": "WGS 84"},
    ),
    "crs with a name that is not a string": (
        {**polygon(SHELL), "crs": {"type": "name", "properties": {"name": ["EPSG", 3857]}}},
        {"coverage_areas.crs": "WGS 84"},
    ),
    "crs on a feature collection": (
        {**collection(feature(polygon(SHELL))), "crs": WEB_MERCATOR},
        {"coverage_areas.crs": "WGS 84"},
    ),
    "crs on one feature of a collection": (
        collection(feature(polygon(SHELL)), {**feature(polygon(SHELL)), "crs": WEB_MERCATOR}),
        {"coverage_areas.features[1].crs": "WGS 84"},
    ),
    "crs on a geometry inside a feature": (
        feature({**polygon(SHELL), "crs": WEB_MERCATOR}),
        {"coverage_areas.geometry.crs": "WGS 84"},
    ),
    # --- paths inside feature collections ---
    "unclosed ring of the third feature (the issue's example)": (
        collection(
            feature(polygon(square(0, 0, 1))),
            feature(FIJI),
            feature(polygon([[0, 0], [10, 0], [10, 10], [0, 10]])),
        ),
        {"coverage_areas.features[2].geometry.coordinates[0]": "must be closed"},
    ),
    "several faults in several features": (
        collection(
            feature(polygon(SHELL)),
            feature({"type": "Point", "coordinates": [0, 0]}),
            feature(polygon(SHELL[:-1])),
            feature(multipolygon([square(0, 0, 1)], [ring((0, 0), (200, 0), (1, 1))])),
        ),
        {
            "coverage_areas.features[1].geometry.type": "got 'Point'",
            "coverage_areas.features[2].geometry.coordinates[0]": "must be closed",
            "coverage_areas.features[3].geometry.coordinates[1][0][1]": "Longitude 200",
        },
    ),
    "faults in two polygons of one multipolygon": (
        multipolygon([ring((0, 0), (1, 0), (1, 1))[:-1]], [square(5, 5, 1)], [ring((0, 0), (1, 95), (1, 1))]),
        {
            "coverage_areas.coordinates[0][0]": "at least four positions",
            "coverage_areas.coordinates[2][0][1]": "Latitude 95",
        },
    ),
}


@pytest.mark.parametrize(("value", "expected"), INVALID.values(), ids=INVALID.keys())
def test_invalid_coverage_names_the_path_and_the_fault(value, expected):
    with pytest.raises(CoverageError) as caught:
        validate_coverage(value)
    errors = caught.value.errors
    assert set(errors) == set(expected), errors
    for path, fragment in expected.items():
        assert len(errors[path]) == 1, errors[path]  # each fault once, not repeated
        assert fragment in errors[path][0], (path, errors[path])
    # The exception's text names every path too (for logs and the admin).
    for path in expected:
        assert path in str(caught.value)


def test_the_root_of_the_paths_is_the_callers():
    with pytest.raises(CoverageError) as caught:
        validate_coverage(collection(feature(polygon(SHELL[:-1]))), path="areas")
    assert list(caught.value.errors) == ["areas.features[0].geometry.coordinates[0]"]


def test_invalid_geometry_messages_say_where_the_fault_is():
    with pytest.raises(CoverageError) as caught:
        validate_coverage(polygon(BOWTIE))
    assert caught.value.errors == {"coverage_areas.coordinates[0]": ["Invalid geometry: Ring Self-intersection[5 5]."]}


def test_the_crs_fault_of_a_geometry_is_reported_once():
    with pytest.raises(CoverageError) as caught:
        validate_coverage({**polygon(SHELL), "crs": WEB_MERCATOR})
    assert caught.value.errors == {
        "coverage_areas.crs": ["Only WGS 84 longitude/latitude (the RFC 7946 default) is accepted."]
    }


# --- covers and bounding_box --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("area", "lon", "lat", "expected"),
    [
        (DONUT, 1, 41, True),  # inside the shell
        (DONUT, 5, 45, False),  # in the hole
        (DONUT, 4, 45, True),  # on the hole's edge: the boundary counts as covered
        (DONUT, 0, 45, True),  # on the shell's edge
        (DONUT, 0, 40, True),  # a corner
        (DONUT, -0.001, 45, False),  # just outside
        (DONUT, 11, 45, False),
        (DONUT, 5, 39.999, False),
        (FIJI, 179.5, -15, True),  # east of the antimeridian
        (FIJI, -179.5, -15, True),  # west of it
        (FIJI, 180, -15, True),
        (FIJI, -180, -15, True),
        (FIJI, 0, -15, False),  # the split area does not wrap round the world
        (FIJI, 179.5, -25, False),
        (FIJI, -174.5, -15, False),
        (feature(FIJI), -179.5, -15, True),
        (collection(feature(polygon(square(0, 0, 1))), feature(FIJI)), 0.5, 0.5, True),
        (collection(feature(polygon(square(0, 0, 1))), feature(FIJI)), 179.5, -15, True),
        (collection(feature(polygon(square(0, 0, 1))), feature(FIJI)), 2, 2, False),
        (VALID["positions with altitude"], 0.5, 0.5, True),
        (VALID["altitude on some positions only"], 0.5, 0.5, True),
        (VALID["clockwise shell (RFC 7946: parsers should not reject)"], 5, 45, True),
        (None, 0, 0, False),
        ({}, 0, 0, False),
    ],
)
def test_covers(area, lon, lat, expected):
    assert covers(area, lon, lat) is expected


def test_a_ring_that_jumps_across_the_antimeridian_is_read_literally():
    # 179 -> -179 is not a 2-degree hop east: RFC 7946 positions are plain lon/lat, so this ring spans
    # 358 degrees the other way round. (Split it at +/-180 into a MultiPolygon instead, like FIJI.)
    literal = polygon(ring((179, 0), (-179, 0), (-179, 1), (179, 1)))
    validate_coverage(literal)
    assert covers(literal, 0, 0.5)
    assert not covers(literal, 179.5, 0.5)
    assert bounding_box(literal) == (-179.0, 0.0, 179.0, 1.0)


def test_covers_does_not_depend_on_key_order_or_on_earlier_calls():
    reordered = {"coordinates": DONUT["coordinates"], "type": "Polygon"}
    assert covers(DONUT, 1, 41) and covers(reordered, 1, 41)
    other = polygon(square(100, 0, 1))
    assert not covers(other, 1, 41)
    assert covers(DONUT, 1, 41)


@pytest.mark.parametrize(
    ("area", "box"),
    [
        (polygon(square(4, 52, 1)), (4, 52, 5, 53)),
        (DONUT, (0, 40, 10, 50)),
        (FIJI, (-180, -20, 180, -10)),
        (feature(polygon(square(-3, -2, 1))), (-3, -2, -2, -1)),
        (collection(feature(polygon(square(0, 0, 1))), feature(polygon(square(10, 20, 5)))), (0, 0, 15, 25)),
        (VALID["positions with altitude"], (0, 0, 1, 1)),
        (VALID["altitude on some positions only"], (0, 0, 1, 1)),
        (VALID["whole world"], (-180, -90, 180, 90)),
    ],
)
def test_bounding_box(area, box):
    result = bounding_box(area)
    assert result == box
    assert all(isinstance(v, float) for v in result)


# --- the API ----------------------------------------------------------------------------------------


def contract_body(counterparty, reference="G-1", **fields):
    return {
        "reference": reference,
        "name": "Coverage test",
        "contract_type": "service_contract",
        "counterparty_id": counterparty.pk,
        "counterparty_role": "customer",
        **fields,
    }


API_INVALID = {
    "unclosed ring of the third feature": (
        collection(
            feature(polygon(square(0, 0, 1))), feature(FIJI), feature(polygon([[0, 0], [10, 0], [10, 10], [0, 10]]))
        ),
        "coverage_areas.features[2].geometry.coordinates[0]",
    ),
    "bowtie": (polygon(BOWTIE), "coverage_areas.coordinates[0]"),
    "hole outside the shell": (polygon(SHELL, square(20, 20, 1)), "coverage_areas.coordinates"),
    "out of range": (polygon(ring((0, 0), (0, 91), (1, 1))), "coverage_areas.coordinates[0][1]"),
    "web mercator crs": ({**polygon(SHELL), "crs": WEB_MERCATOR}, "coverage_areas.crs"),
    "point": ({"type": "Point", "coordinates": [0, 0]}, "coverage_areas.type"),
    "a string": ("POLYGON((0 0, 1 0, 1 1, 0 0))", "coverage_areas"),
    "a list": ([SHELL], "coverage_areas"),
    "an empty object": ({}, "coverage_areas.type"),
    "mixed altitude with a bowtie": (
        polygon([[0, 0, 1], [10, 10], [10, 0, 2], [0, 10], [0, 0]]),
        "coverage_areas.coordinates[0]",
    ),
}


@pytest.mark.django_db
class TestCoverageThroughTheAPI:
    @pytest.mark.parametrize(("value", "path"), API_INVALID.values(), ids=API_INVALID.keys())
    def test_post_invalid_coverage_is_422_naming_the_path(self, api, counterparty, value, path):
        response = api("manager").post(URL, contract_body(counterparty, coverage_areas=value), format="json")
        assert response.status_code == 422, response.content
        payload = response.json()
        assert payload["message"] == "Validation failed."
        assert list(payload["errors"]) == [path]
        assert payload["errors"][path] and all(isinstance(m, str) and m for m in payload["errors"][path])
        assert not Contract.objects.exists()

    def test_post_reports_every_faulty_feature(self, api, counterparty):
        value = INVALID["several faults in several features"][0]
        response = api("manager").post(URL, contract_body(counterparty, coverage_areas=value), format="json")
        assert response.status_code == 422, response.content
        assert set(response.json()["errors"]) == set(INVALID["several faults in several features"][1])

    @pytest.mark.parametrize("name", list(VALID))
    def test_post_valid_coverage_is_stored_and_returned_as_given(self, api, counterparty, name):
        value = VALID[name]
        client = api("manager")
        response = client.post(URL, contract_body(counterparty, coverage_areas=value), format="json")
        assert response.status_code == 201, response.content
        created = response.json()
        assert created["coverage_areas"] == value
        # Exactly as given: also the number types (1 stays 1, 52.3702 stays 52.3702, 10 is not 10.0).
        assert json.dumps(created["coverage_areas"], sort_keys=True) == json.dumps(value, sort_keys=True)
        fetched = client.get(f"{URL}/{created['id']}").json()["coverage_areas"]
        assert json.dumps(fetched, sort_keys=True) == json.dumps(value, sort_keys=True)
        contract = Contract.objects.get(pk=created["id"])
        assert contract.coverage_areas == value
        assert (
            contract.coverage_min_lon,
            contract.coverage_min_lat,
            contract.coverage_max_lon,
            contract.coverage_max_lat,
        ) == bounding_box(value)

    def test_no_coverage_is_null(self, api, counterparty):
        response = api("manager").post(URL, contract_body(counterparty), format="json")
        assert response.status_code == 201, response.content
        assert response.json()["coverage_areas"] is None
        assert Contract.objects.get().coverage_min_lon is None

    def test_patch_invalid_coverage_is_422_naming_the_path_and_keeps_the_old(self, api, counterparty):
        client = api("manager")
        created = client.post(URL, contract_body(counterparty, coverage_areas=DONUT), format="json").json()
        bad = collection(feature(polygon(SHELL)), feature(polygon(SHELL)), feature(polygon(SHELL[:-1])))
        response = client.patch(f"{URL}/{created['id']}", {"coverage_areas": bad}, format="json")
        assert response.status_code == 422, response.content
        assert list(response.json()["errors"]) == ["coverage_areas.features[2].geometry.coordinates[0]"]
        assert Contract.objects.get(pk=created["id"]).coverage_areas == DONUT

    def test_patch_replaces_and_clears_the_coverage_and_its_box(self, api, counterparty):
        client = api("manager")
        created = client.post(URL, contract_body(counterparty, coverage_areas=DONUT), format="json").json()
        detail = f"{URL}/{created['id']}"

        response = client.patch(detail, {"coverage_areas": FIJI}, format="json")
        assert response.status_code == 200, response.content
        assert response.json()["coverage_areas"] == FIJI
        assert [c["id"] for c in client.get(f"{URL}?covers=179.5,-15").json()] == [created["id"]]
        assert client.get(f"{URL}?covers=1,41").json() == []

        response = client.patch(detail, {"coverage_areas": None}, format="json")
        assert response.status_code == 200, response.content
        assert response.json()["coverage_areas"] is None
        contract = Contract.objects.get(pk=created["id"])
        assert contract.coverage_min_lon is contract.coverage_max_lat is None
        assert client.get(f"{URL}?covers=179.5,-15").json() == []

    def test_coverage_is_descriptive_so_it_can_change_on_an_active_contract(self, api, make_contract):
        contract = make_contract(status="active")
        client = api("manager")
        response = client.patch(f"{URL}/{contract.pk}", {"coverage_areas": DONUT}, format="json")
        assert response.status_code == 200, response.content
        assert [c["id"] for c in client.get(f"{URL}?covers=1,41").json()] == [contract.pk]


@pytest.mark.django_db
class TestCoversFilter:
    @pytest.fixture
    def contracts(self, api, org, other_org, counterparty):
        client = api("manager")

        def make(reference, area):
            response = client.post(URL, contract_body(counterparty, reference, coverage_areas=area), format="json")
            assert response.status_code == 201, response.content
            return response.json()["id"]

        made = {
            "donut": make("G-DONUT", DONUT),
            "fiji": make("G-FIJI", FIJI),
            "islands": make("G-ISLANDS", collection(feature(polygon(square(20, 0, 1))), feature(FIJI))),
            "none": make("G-NONE", None),
        }
        # Another organization's contract covering the same places never shows.
        theirs = baker.make(Counterparty, organization=other_org)
        response = api("manager", org=other_org).post(
            URL, contract_body(theirs, "THEIRS", coverage_areas=VALID["whole world"]), format="json"
        )
        assert response.status_code == 201, response.content
        return client, made

    @pytest.mark.parametrize(
        ("point", "expected"),
        [
            ("1,41", ["donut"]),  # inside
            ("5,45", []),  # in the hole (inside the bounding box, though)
            ("4,45", ["donut"]),  # on the hole's edge
            ("0,40", ["donut"]),  # on a corner
            ("30,30", []),  # outside everything
            ("179.5,-15", ["fiji", "islands"]),  # east of the antimeridian
            ("-179.5,-15", ["fiji", "islands"]),  # west of it
            ("0,-15", []),  # inside the split area's box (-180..180) but not in the area
            ("20.5,0.5", ["islands"]),  # the other feature of the collection
            (" 1 , 41 ", ["donut"]),
            ("1.0e0,4.1e1", ["donut"]),
        ],
    )
    def test_covers(self, contracts, point, expected):
        client, made = contracts
        response = client.get(URL, {"covers": point, "per_page": 100})
        assert response.status_code == 200, response.content
        assert sorted(c["id"] for c in response.json()) == sorted(made[label] for label in expected)

    def test_covers_combines_with_other_filters(self, contracts):
        client, made = contracts
        Contract.objects.filter(pk=made["fiji"]).update(status="active")
        response = client.get(URL, {"covers": "179.5,-15", "status": "active"})
        assert [c["id"] for c in response.json()] == [made["fiji"]]
        assert response["X-Pagination-Total-Entries"] == "1"

    @pytest.mark.parametrize("value", ["abc", "1", "1,2,3", "1;2", "a,b", "200,0", "0,95", "-180.1,0", "nan,nan"])
    def test_malformed_covers_is_400_naming_covers(self, api, value):
        response = api("viewer").get(URL, {"covers": value})
        assert response.status_code == 400, response.content
        payload = response.json()
        assert "covers" in payload["message"]
        assert list(payload["errors"]) == ["covers"]
