"""The district's organisation (streets → communities → grids → buildings), read from a TOML file.

The file is edited by admins (see district.toml); buildings are listed per grid
as number ranges of an estate ("1-6, 9"), so a grid of 40 buildings is one line.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from bot.core.ports import PlaceMatch
from bot.errors import ConfigError


@dataclass(frozen=True)
class Grid:
    id: str
    name: str
    community_id: str
    estate: str
    buildings: frozenset[int]
    latitude: float | None = None
    longitude: float | None = None


@dataclass(frozen=True)
class Community:
    id: str
    name: str
    street: str
    estates: tuple[str, ...]
    hours: str = ""  # when the community's service hall is open, as residents read it
    office: str = ""  # where the hall is
    phone: str = ""  # the hall's public number (never a worker's own)


@dataclass
class Organisation:
    communities: dict[str, Community] = field(default_factory=dict)
    grids: dict[str, Grid] = field(default_factory=dict)

    def grid_of(self, estate: str, building: int) -> Grid | None:
        for grid in self.grids.values():
            if grid.estate == estate and building in grid.buildings:
                return grid
        return None

    def community_of_grid(self, grid_id: str | None) -> Community | None:
        grid = self.grids.get(grid_id or "")
        return self.communities.get(grid.community_id) if grid else None

    def community_of_estate(self, estate: str) -> Community | None:
        for community in self.communities.values():
            if estate in community.estates:
                return community
        return None

    def estates(self) -> list[str]:
        names = {g.estate for g in self.grids.values()} | {e for c in self.communities.values() for e in c.estates}
        return sorted(names, key=len, reverse=True)  # longest first: "华江里东区" before "华江里"


def load_organisation(path: Path) -> Organisation:
    try:
        raw = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"organisation file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    org = Organisation()
    for item in raw.get("community", []):
        try:
            org.communities[item["id"]] = Community(item["id"], item["name"], item.get("street", ""),
                                                    tuple(item.get("estates", [])), str(item.get("hours", "")),
                                                    str(item.get("office", "")), str(item.get("phone", "")))
        except KeyError as exc:
            raise ConfigError(f"{path}: a [[community]] lacks {exc}") from exc
    for item in raw.get("grid", []):
        try:
            if item["community"] not in org.communities:
                raise ConfigError(f"{path}: grid {item['id']} names unknown community {item['community']!r}")
            org.grids[item["id"]] = Grid(item["id"], item["name"], item["community"], item["estate"],
                                         frozenset(parse_ranges(str(item.get("buildings", "")))),
                                         item.get("latitude"), item.get("longitude"))
        except KeyError as exc:
            raise ConfigError(f"{path}: a [[grid]] lacks {exc}") from exc
    return org


def parse_ranges(spec: str) -> set[int]:
    numbers: set[int] = set()
    for part in re.split(r"[,，\s]+", spec.strip()):
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-", 1)
            numbers.update(range(int(lo), int(hi) + 1))
        else:
            numbers.add(int(part))
    return numbers


_CN_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10}
_BUILDING = re.compile(r"(\d+|[一二两三四五六七八九十]{1,3})\s*(?:号楼|号|栋|幢|#楼|#)")
_UNIT = re.compile(r"(\d+|[一二三四五六七八九十])\s*(?:单元|门)")
_ROOM = re.compile(r"(\d{3,4})\s*(?:室|号|房)?")
# the shorthand workers and residents write right after the estate: 景村东里5-2-301 (building-unit-room)
_DASHED = re.compile(r"^\s*(\d{1,3})\s*[-—－]\s*(\d{1,2})(?:\s*[-—－]\s*(\d{3,4}))?(?!\d)")


def _number(token: str) -> int:
    if token.isdigit():
        return int(token)
    if token.startswith("十"):
        return 10 + _CN_DIGITS.get(token[1:], 0) if len(token) > 1 else 10
    if "十" in token:
        tens, _, ones = token.partition("十")
        return _CN_DIGITS.get(tens, 1) * 10 + _CN_DIGITS.get(ones, 0)
    return _CN_DIGITS.get(token, 0)


class PlaceResolver:
    """Match a resident's free text ('景村里3号楼2单元502') or a location to a building and grid."""

    def __init__(self, org: Organisation, max_distance_m: float = 600.0):
        self.org = org
        self.max_distance_m = max_distance_m

    def resolve(self, text: str) -> PlaceMatch | None:
        estate = next((e for e in self.org.estates() if e in text), None)
        dashed = _DASHED.match(text[text.find(estate) + len(estate):]) if estate else None
        if dashed:
            return self._dashed(estate, dashed)
        building_m = _BUILDING.search(text[text.find(estate) + len(estate):] if estate else text)
        if estate is None and building_m is None:
            return None
        parts = [estate or ""]
        building_id = grid_id = None
        community = ""
        if building_m:
            number = _number(building_m.group(1))
            parts.append(f"{number}号楼")
            rest = text[building_m.end() + (text.find(estate) + len(estate) if estate else 0):]
            unit = _UNIT.search(rest)
            if unit:
                parts.append(f"{_number(unit.group(1))}单元")
                rest = rest[unit.end():]
            room = _ROOM.match(rest.strip())
            if room:
                parts.append(f"{room.group(1)}室")
            if estate:
                grid = self.org.grid_of(estate, number)
                if grid:
                    building_id, grid_id = f"{estate}-{number}", grid.id
        if estate:
            c = self.org.community_of_grid(grid_id) or self.org.community_of_estate(estate)
            community = c.id if c else ""
        label = "".join(parts) or text[:60]
        return PlaceMatch(label, building_id, grid_id, community)

    def _dashed(self, estate: str, m: re.Match) -> PlaceMatch:
        number = int(m.group(1))
        label = f"{estate}{number}号楼{int(m.group(2))}单元" + (f"{m.group(3)}室" if m.group(3) else "")
        grid = self.org.grid_of(estate, number)
        community = self.org.community_of_grid(grid.id if grid else None) or self.org.community_of_estate(estate)
        return PlaceMatch(label, f"{estate}-{number}" if grid else None, grid.id if grid else None,
                          community.id if community else "")

    def resolve_location(self, latitude: float, longitude: float) -> PlaceMatch | None:
        best: tuple[float, object] | None = None
        for grid in self.org.grids.values():
            if grid.latitude is None or grid.longitude is None:
                continue
            d = _distance_m(latitude, longitude, grid.latitude, grid.longitude)
            if d <= self.max_distance_m and (best is None or d < best[0]):
                best = (d, grid)
        if best is None:
            return None
        grid = best[1]
        return PlaceMatch(f"{grid.estate}附近（定位）", None, grid.id, grid.community_id)


def _distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    r = 6371000.0
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(a))
