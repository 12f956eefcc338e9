"""Coverage areas in GeoJSON (RFC 7946), validated as a GIS tool would, and point-in-area tests.

Accepted: a Polygon or MultiPolygon geometry, or a Feature or FeatureCollection whose features
carry such geometries. Positions are [longitude, latitude(, altitude)] in WGS 84 with longitude
in [-180, 180] and latitude in [-90, 90]; rings are closed and have at least four positions;
polygons must be valid (no self-intersection, holes inside their shell). A `crs` member other
than the RFC 7946 default is rejected. Errors name their JSON path, e.g.
`coverage_areas.features[2].geometry.coordinates[0]`.

An area that crosses the antimeridian must be split into a MultiPolygon at +/-180, as RFC 7946
§3.1.9 says; a ring that jumps across it is read literally (and is usually self-intersecting).
"""

from __future__ import annotations

import functools
import json
from numbers import Real

import shapely
from shapely.geometry import LinearRing, MultiPolygon, Point, Polygon
from shapely.validation import explain_validity

_DEFAULT_CRS_NAMES = {"urn:ogc:def:crs:OGC:1.3:CRS84", "urn:ogc:def:crs:OGC::CRS84", "EPSG:4326"}
_GEOMETRY_TYPES = ("Polygon", "MultiPolygon")


class CoverageError(ValueError):
    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{path}: {', '.join(m)}" for path, m in errors.items()))
        self.errors = errors


def _add(errors: dict, path: str, message: str) -> None:
    errors.setdefault(path, []).append(message)


def _check_crs(obj: dict, path: str, errors: dict) -> None:
    crs = obj.get("crs")
    if crs is None:
        return
    name = None
    if isinstance(crs, dict) and crs.get("type") == "name" and isinstance(crs.get("properties"), dict):
        name = crs["properties"].get("name")
    if not isinstance(name, str) or name not in _DEFAULT_CRS_NAMES:
        _add(errors, f"{path}.crs", "Only WGS 84 longitude/latitude (the RFC 7946 default) is accepted.")


def _xy(ring: list) -> list[tuple]:
    """A ring's positions without altitude (which may be given for some positions and not others)."""
    return [(position[0], position[1]) for position in ring]


def _polygon(rings: list) -> Polygon:
    return Polygon(_xy(rings[0]), [_xy(ring) for ring in rings[1:]])


def _shape(geometry: dict) -> Polygon | MultiPolygon:
    """The 2D shapely geometry of a structurally valid Polygon or MultiPolygon."""
    if geometry["type"] == "Polygon":
        return _polygon(geometry["coordinates"])
    return MultiPolygon([_polygon(rings) for rings in geometry["coordinates"]])


def _check_polygon_validity(rings: list, path: str, errors: dict) -> bool:
    """Each ring simple (its fault at the ring's path), then the polygon (holes inside the shell, ...)."""
    ok = True
    for r, ring in enumerate(rings):
        linear_ring = LinearRing(_xy(ring))
        if not linear_ring.is_valid:
            _add(errors, f"{path}[{r}]", f"Invalid geometry: {explain_validity(linear_ring)}.")
            ok = False
    if not ok:
        return False
    polygon = _polygon(rings)
    if not polygon.is_valid:
        _add(errors, path, f"Invalid geometry: {explain_validity(polygon)}.")
        return False
    return True


def _check_position(position, path: str, errors: dict) -> bool:
    if not isinstance(position, list) or not 2 <= len(position) <= 3:
        _add(errors, path, "A position is [longitude, latitude] (optionally with altitude).")
        return False
    if not all(isinstance(v, Real) and not isinstance(v, bool) for v in position):
        _add(errors, path, "Coordinates must be numbers.")
        return False
    lon, lat = position[0], position[1]
    if not -180 <= lon <= 180:
        _add(errors, path, f"Longitude {lon} is out of range [-180, 180].")
        return False
    if not -90 <= lat <= 90:
        _add(errors, path, f"Latitude {lat} is out of range [-90, 90].")
        return False
    return True


def _check_polygon_rings(rings, path: str, errors: dict) -> bool:
    if not isinstance(rings, list) or not rings:
        _add(errors, path, "A polygon is a non-empty list of linear rings.")
        return False
    ok = True
    for r, ring in enumerate(rings):
        ring_path = f"{path}[{r}]"
        if not isinstance(ring, list):
            _add(errors, ring_path, "A linear ring is a list of positions.")
            ok = False
            continue
        positions_ok = all(_check_position(p, f"{ring_path}[{i}]", errors) for i, p in enumerate(ring))
        if not positions_ok:
            ok = False
            continue
        if len(ring) < 4:
            _add(errors, ring_path, "A linear ring needs at least four positions.")
            ok = False
        elif ring[0][:2] != ring[-1][:2]:
            _add(errors, ring_path, "A linear ring must be closed (its last position equal to its first).")
            ok = False
    return ok


def _check_geometry(geometry, path: str, errors: dict) -> None:
    if not isinstance(geometry, dict):
        _add(errors, path, "A geometry must be an object.")
        return
    _check_crs(geometry, path, errors)
    kind = geometry.get("type")
    if kind not in _GEOMETRY_TYPES:
        _add(errors, f"{path}.type", f"Expected Polygon or MultiPolygon, got {kind!r}.")
        return
    coordinates = geometry.get("coordinates")
    coordinates_path = f"{path}.coordinates"
    if kind == "Polygon":
        structure_ok = _check_polygon_rings(coordinates, coordinates_path, errors)
    elif not isinstance(coordinates, list) or not coordinates:
        _add(errors, coordinates_path, "A MultiPolygon is a non-empty list of polygons.")
        structure_ok = False
    else:
        # A list, not a generator: every faulty polygon is reported, not only the first.
        structure_ok = all(
            [_check_polygon_rings(polygon, f"{coordinates_path}[{p}]", errors) for p, polygon in enumerate(coordinates)]
        )
    if not structure_ok:
        return
    if kind == "Polygon":
        _check_polygon_validity(coordinates, coordinates_path, errors)
        return
    polygons_ok = all(
        [_check_polygon_validity(polygon, f"{coordinates_path}[{p}]", errors) for p, polygon in enumerate(coordinates)]
    )
    if polygons_ok:
        multi = _shape(geometry)
        if not multi.is_valid:
            _add(
                errors,
                coordinates_path,
                f"Invalid geometry: {explain_validity(multi)} (the polygons of a MultiPolygon must not overlap "
                "or share an edge).",
            )


def validate_coverage(value, path: str = "coverage_areas") -> None:
    """Raise `CoverageError` with every fault found, by JSON path; return None when valid."""
    errors: dict[str, list[str]] = {}
    if not isinstance(value, dict):
        raise CoverageError({path: ["GeoJSON must be an object."]})
    kind = value.get("type")
    if kind in _GEOMETRY_TYPES:
        _check_geometry(value, path, errors)  # checks its crs too
        if errors:
            raise CoverageError(errors)
        return
    _check_crs(value, path, errors)
    if kind == "Feature":
        _check_geometry(value.get("geometry"), f"{path}.geometry", errors)
    elif kind == "FeatureCollection":
        features = value.get("features")
        if not isinstance(features, list) or not features:
            _add(errors, f"{path}.features", "A FeatureCollection needs a non-empty list of features.")
        else:
            for i, feature in enumerate(features):
                feature_path = f"{path}.features[{i}]"
                if not isinstance(feature, dict) or feature.get("type") != "Feature":
                    _add(errors, f"{feature_path}.type", "Expected a Feature.")
                    continue
                _check_crs(feature, feature_path, errors)
                _check_geometry(feature.get("geometry"), f"{feature_path}.geometry", errors)
    else:
        _add(errors, f"{path}.type", f"Expected Polygon, MultiPolygon, Feature or FeatureCollection, got {kind!r}.")
    if errors:
        raise CoverageError(errors)


def _geometries(value: dict):
    kind = value["type"]
    if kind == "FeatureCollection":
        return [feature["geometry"] for feature in value["features"]]
    if kind == "Feature":
        return [value["geometry"]]
    return [value]


@functools.lru_cache(maxsize=4096)
def _area_from_json(text: str):
    area = shapely.union_all([_shape(g) for g in _geometries(json.loads(text))])
    shapely.prepare(area)
    return area


def coverage_area(value: dict):
    """The (prepared, cached) shapely geometry of a valid coverage value."""
    return _area_from_json(json.dumps(value, sort_keys=True))


def bounding_box(value: dict) -> tuple[float, float, float, float]:
    """(min_lon, min_lat, max_lon, max_lat) of a valid coverage value."""
    return tuple(coverage_area(value).bounds)


def validate_point(value, path: str = "location") -> tuple[float, float]:
    """A GeoJSON Point (RFC 7946) in WGS 84: return (lon, lat), or raise `CoverageError` at `path`."""
    errors: dict[str, list[str]] = {}
    if not isinstance(value, dict) or value.get("type") != "Point":
        raise CoverageError({path: ['Expected a GeoJSON Point: {"type": "Point", "coordinates": [lon, lat]}.']})
    _check_crs(value, path, errors)
    if _check_position(value.get("coordinates"), path, errors) and not errors:
        lon, lat = value["coordinates"][:2]
        return float(lon), float(lat)
    raise CoverageError(errors)


def point_of(value: dict | None) -> tuple[float, float] | None:
    """(lon, lat) of a stored (valid) GeoJSON Point, or None."""
    if not value:
        return None
    lon, lat = value["coordinates"][:2]
    return float(lon), float(lat)


def covers(value: dict | None, lon: float, lat: float) -> bool:
    """Whether the area contains the point; a point on the boundary counts as covered."""
    if not value:
        return False
    return coverage_area(value).intersects(Point(lon, lat))
