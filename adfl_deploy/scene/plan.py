"""Where everyone is, when: the scene's script, as pure functions of a seeded config.

People arrive in small groups of similar workwear, walk across one camera, take a few seconds to
reach the next camera of a chain (cam1 - cam2 - ... - camN - cam1), and some walk back later,
so the same person re-enters a camera after a long gap. Group members share a route but walk in
different lanes at different speeds, so they overtake and occlude each other.

Every visit is a straight walk across the frame (feet from one side to the other, slightly
toward or away from the camera, inside the camera's lanes: on the floor, people between
``PERSON_HEIGHT`` tall, heads inside the frame); where the feet are at time ``t`` follows from the
visit alone (``position``), and the person's height from the camera's ground plane
(``height_at``). Each camera sees a real room (``Room``: floor line, horizon, height ratio)
through its own zoom and framing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from adfl_deploy.errors import ConfigError
from adfl_deploy.scene.people import WORKWEAR, Room

#: largest frame side: a 4096x4096 scene already needs about 2 GB of memory while it renders
MAX_SIDE = 4096


@dataclass(frozen=True)
class SceneConfig:
    cameras: int = 3
    width: int = 768
    height: int = 432
    fps: float = 10.0
    seconds: float = 60.0
    #: identities in the scene (at most the 16 shipped)
    people: int = 12
    seed: int = 0
    #: people arriving together (same workwear where possible)
    group_size: int = 3
    #: seconds to walk from one camera to the next (min, max)
    transit: tuple[float, float] = (2.0, 6.0)
    #: cameras each person walks through (min, max), revisits included
    visits: tuple[int, int] = (2, 4)
    #: walking speed in frame widths per second (min, max)
    speed: tuple[float, float] = (0.08, 0.13)
    #: fraction of gt boxes at which a person counts as visible (MOTChallenge visibility)
    min_visibility: float = 0.25

    def __post_init__(self) -> None:
        """Range checks, so that a library user gets the same one-line errors as ``adfl scene``."""
        if not 1 <= self.cameras <= 6:
            raise ConfigError(f"scene cameras must be 1-6 (one real Con-ReID camera each), got {self.cameras}")
        if self.width < 320 or self.height < 180:
            raise ConfigError(f"scene size {self.width}x{self.height} is too small; use at least 320x180 (default 768x432)")
        if self.width > MAX_SIDE or self.height > MAX_SIDE:
            raise ConfigError(
                f"scene size {self.width}x{self.height} is too large; use at most {MAX_SIDE} pixels per side (default 768x432)"
            )
        if not (math.isfinite(self.fps) and 1 <= self.fps <= 60):
            raise ConfigError(f"scene fps must be 1-60, got {self.fps}")
        if not (math.isfinite(self.seconds) and self.seconds > 0):
            raise ConfigError(f"scene seconds must be a positive number, e.g. 60, got {self.seconds}")
        if round(self.seconds * self.fps) < 1:
            raise ConfigError(f"scene of {self.seconds:g} s at {self.fps:g} FPS has no frame; use at least {1 / self.fps:g} s")
        if self.people < 1:
            raise ConfigError(f"scene people must be at least 1, got {self.people}")
        if self.seed < 0:
            raise ConfigError(f"scene seed must be 0 or more, got {self.seed}")
        if self.group_size < 1 or not 1 <= self.visits[0] <= self.visits[1]:
            raise ConfigError(
                f"scene group_size must be >= 1 and visits 1 <= min <= max, got {self.group_size} and {self.visits}"
            )
        for name, (low, high), least in (("transit", self.transit, 0.0), ("speed", self.speed, 1e-3)):
            if not (math.isfinite(high) and least <= low <= high):
                raise ConfigError(f"scene {name} must be (min, max) with {least:g} <= min <= max, finite; got ({low}, {high})")
        if not 0 <= self.min_visibility <= 1:
            raise ConfigError(f"scene min_visibility must be 0-1, got {self.min_visibility}")


@dataclass(frozen=True)
class CameraLook:
    """How one simulated camera sees the world: its view of the background, person scale,
    colour cast, blur and noise."""

    background: int
    flip: bool
    zoom: float
    offset: tuple[float, float]  # top-left of the zoomed view, as fractions of the free margin
    far_height: float  # person height in pixels with feet on the horizon line
    near_height: float  # ... with feet at the bottom of the frame
    horizon: float  # fraction of the frame height where the floor starts
    gain: tuple[float, float, float]  # BGR
    blur: float  # Gaussian sigma in pixels (0 = sharp)
    noise: float  # pixel noise standard deviation
    #: feet y range people walk in, as fractions of the frame height (None: the floor's lower 90%)
    lanes: tuple[float, float] | None = None


@dataclass(frozen=True)
class Visit:
    global_id: int
    person: str  # Con-ReID identity
    camera: int  # 0-based simulated camera
    real_camera: int  # the Con-ReID camera whose crops show the person here
    start: float
    end: float
    x: tuple[float, float]  # box centre at start / end (pixels)
    feet: tuple[float, float]  # feet y at start / end (pixels)
    scale: float  # person height factor


#: person heights people are drawn at, as fractions of the frame height (lanes keep inside)
PERSON_HEIGHT = (0.3, 0.8)


def view_geometry(room: Room, zoom: float, offset_y: float) -> tuple[float, float]:
    """(floor, vanish) of ``room`` in a camera's view (zoomed by ``zoom``, top of the view at
    ``offset_y`` of the free margin), as fractions of the view's height. The person height ratio
    is the same in the view: zooming scales feet and heights alike."""
    top = offset_y * (1.0 - 1.0 / zoom)  # in fractions of the room image's height
    return (room.floor - top) * zoom, (room.vanish - top) * zoom


def _lanes(room: Room, zoom: float, offset_y: float, frame_height: int) -> tuple[float, float, float, float] | None:
    """(floor, vanish, lowest feet, highest feet) in a view, as fractions of its height: feet on
    the floor, people ``PERSON_HEIGHT`` tall and their heads inside the frame; None if nobody fits."""
    floor, vanish = view_geometry(room, zoom, offset_y)
    floor = max(floor, 0.0)
    r = room.ratio
    head_in_frame = (0.01 - r * vanish) / (1.0 - r) if r < 1.0 else 1.0  # feet y from which the head is below y = 0.01
    low = max(floor + 0.02, vanish + PERSON_HEIGHT[0] / r, head_in_frame)
    high = min(1.0 - 4.0 / frame_height, vanish + PERSON_HEIGHT[1] / r)
    return (floor, vanish, low, high) if high > low + 0.02 else None


def camera_looks(config: SceneConfig, rooms: list[Room], rng: np.random.Generator) -> list[CameraLook]:
    """One look per camera: a different room for each camera while there are rooms left, its
    own zoom and framing (so floor line, horizon and person sizes differ), colour cast, blur, noise.
    A framing in which nobody fits (a close camera zoomed in: heads cut off) falls back to the
    room's whole view."""
    looks = []
    order = [int(i) for i in rng.permutation(len(rooms))]
    for k in range(config.cameras):
        room_index = order[k % len(rooms)]
        room = rooms[room_index]
        zoom = 1.0 if k == 0 else float(rng.uniform(1.1, 1.4))
        offset = (float(rng.uniform()), float(rng.uniform(0.3, 1.0)))
        fit = _lanes(room, zoom, offset[1], config.height)
        if fit is None:
            zoom, offset = 1.0, (offset[0], 0.0)
            fit = _lanes(room, zoom, offset[1], config.height)
        if fit is None:
            raise ValueError(f"room {room_index} has no floor where a person fits; check backgrounds.json")
        floor, vanish, low, high = fit
        looks.append(
            CameraLook(
                background=room_index,
                flip=bool(rng.uniform() < 0.5),
                zoom=zoom,
                offset=offset,
                far_height=room.ratio * (floor - vanish) * config.height,  # person height with feet at the floor line
                near_height=room.ratio * (1.0 - vanish) * config.height,  # ... at the bottom of the frame
                horizon=floor,
                gain=tuple(float(g) for g in rng.uniform(0.78, 1.18, 3)),
                blur=float(rng.choice([0.0, 0.7, 1.2])),
                noise=float(rng.uniform(1.0, 5.0)),
                lanes=(float(low), float(high)),
            )
        )
    return looks


def pick_people(available: dict[str, dict[int, list]], config: SceneConfig, rng: np.random.Generator) -> list[list[str]]:
    """Groups of identities, each group drawn from one workwear cluster where possible."""
    if not 1 <= config.people <= len(available):
        raise ValueError(f"scene people must be between 1 and {len(available)} (the shipped identities), got {config.people}")
    eligible = {pid for pid, cams in available.items() if len(cams) >= min(config.cameras, 6)}
    clusters = [[p for p in rng.permutation(members) if p in eligible] for members in WORKWEAR.values()]
    rest = [p for p in rng.permutation(sorted(eligible)) if not any(p in c for c in clusters)]
    pool = [p for c in clusters for p in c] + rest
    chosen = pool[: config.people]
    # cut into groups inside clusters: consecutive ids share a cluster
    groups, current = [], []
    for pid in chosen:
        same = current and any(pid in c and current[0] in c for c in clusters)
        if current and (len(current) >= config.group_size or not same):
            groups.append(current)
            current = []
        current.append(pid)
    if current:
        groups.append(current)
    return [groups[i] for i in rng.permutation(len(groups))]


def _route(config: SceneConfig, rng: np.random.Generator) -> list[tuple[int, int]]:
    """(camera, direction) per visit, starting anywhere."""
    start = (int(rng.integers(config.cameras)), int(rng.choice([-1, 1])))
    return [start] + _route_from(start, config, rng)


def _route_from(visit: tuple[int, int], config: SceneConfig, rng: np.random.Generator) -> list[tuple[int, int]]:
    """The visits after ``visit``: walk along the chain of cameras, sometimes turning back
    (re-entering the camera just left, from the other side)."""
    camera, direction = visit
    route = []
    for _ in range(int(rng.integers(config.visits[0], config.visits[1] + 1)) - 1):
        if config.cameras > 1 and rng.uniform() < 0.2:
            direction = -direction
        else:
            camera = (camera + direction) % config.cameras
        route.append((camera, direction))
    return route


def plan_visits(
    config: SceneConfig, looks: list[CameraLook], available: dict[str, dict[int, list]], rng: np.random.Generator
) -> list[Visit]:
    visits = []
    groups = pick_people(available, config, rng)
    starts = np.sort(rng.uniform(0.0, 0.5 * config.seconds, len(groups)))
    gid = 0
    for group, group_start in zip(groups, starts):
        first = _route(config, rng)[0]  # a group enters its first camera together, then splits up
        for member, pid in enumerate(group):
            gid += 1
            route = [first] + _route_from(first, config, rng)
            real = [int(c) for c in rng.permutation(sorted(available[pid]))]  # a different real camera per simulated camera
            scale = float(rng.uniform(0.9, 1.1))
            t = float(group_start + member * rng.uniform(0.3, 1.5))
            speed = float(rng.uniform(*config.speed)) * config.width
            for camera, direction in route:
                look = looks[camera]
                low, high = lanes(look, config.height)
                lane = rng.uniform(low, high)
                drift = rng.uniform(-0.08, 0.08) * config.height
                feet = (float(lane), float(np.clip(lane + drift, low, high)))
                margin = 0.3 * look.near_height
                x = (-margin, config.width + margin) if direction > 0 else (config.width + margin, -margin)
                duration = (config.width + 2 * margin) / speed
                visits.append(Visit(gid, pid, camera, real[camera % len(real)], t, t + duration, x, feet, scale))
                t += duration + float(rng.uniform(*config.transit))
    return [v for v in visits if v.start < config.seconds]


def lanes(look: CameraLook, frame_height: int) -> tuple[float, float]:
    """(lowest, highest) feet y in pixels that people walk at in this camera."""
    if look.lanes is not None:
        return look.lanes[0] * frame_height, look.lanes[1] * frame_height
    floor = look.horizon * frame_height
    return floor + 0.1 * (frame_height - floor), frame_height - 4.0


def height_at(look: CameraLook, feet: float, frame_height: int) -> float:
    """Perspective: people get taller the lower their feet are in the frame (linearly, as on a
    ground plane: zero height at the horizon line)."""
    floor = look.horizon * frame_height
    a = np.clip((feet - floor) / max(frame_height - floor, 1.0), 0.0, 1.0)
    return float(look.far_height + a * (look.near_height - look.far_height))


def position(visit: Visit, t: float) -> tuple[float, float] | None:
    """(centre x, feet y) at time t, or None outside the visit."""
    if not visit.start <= t < visit.end:
        return None
    a = (t - visit.start) / (visit.end - visit.start)
    return visit.x[0] + a * (visit.x[1] - visit.x[0]), visit.feet[0] + a * (visit.feet[1] - visit.feet[0])


def crop_index(frame: int, crops: int, visit: Visit) -> int:
    """Which of the person's crops shows them at this frame (changes every 3 frames: gait)."""
    return (frame // 3 + visit.global_id) % crops
