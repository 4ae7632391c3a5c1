"""Short text descriptions of a scene's contents, for text-conditioned training.

Example: "a bouncing striped red sphere and a sliding blue box in a room with a checkered floor and green
walls, the camera orbits left". Built only from the scene's own parameters, so it is deterministic by seed.
"""
from __future__ import annotations

from .camera_paths import CameraPath
from .motion import MOTION_WORDS
from .render import SceneObject
from .shapes import Room
from .textures import Texture, color_name


def describe_texture(texture: Texture) -> str:
    """'checkered red', 'blue', ... (pattern adjective, then the dominant color's name)."""
    words = [texture.adjective, color_name(texture.color_a)]
    return " ".join(w for w in words if w)


def describe_object(obj: SceneObject) -> str:
    return f"{MOTION_WORDS[obj.trajectory.kind]} {describe_texture(obj.shape.texture)} {obj.shape.kind}"


def _article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _join(items: list[str]) -> str:
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]


def caption(objects: list[SceneObject], room: Room, camera: CameraPath) -> str:
    """One-line description: objects (motion, pattern, color, shape), room floor and walls, camera motion."""
    things = _join([_article(describe_object(o)) for o in objects])
    floor = describe_texture(room.textures[3])
    walls = {describe_texture(room.textures[i]) for i in (0, 1, 4, 5)}
    wall_text = f"{next(iter(walls))} walls" if len(walls) == 1 else "mixed walls"
    return f"{things} in a room with {_article(floor)} floor and {wall_text}, {camera.describe()}"
