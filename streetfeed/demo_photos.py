"""The demo street's photos, drawn at start-up (no download): strawberries in a punnet, loaves
on a board, a cheese wheel, a bouquet, a coffee cup, books on a shelf...

Pure and deterministic: `draw(scene, seed)` gives the same pixels for the same arguments.
Each picture is painted at half size with shading (sphere and cylinder gradients), drop
shadows, a wooden table or an out-of-focus wall with bokeh, then scaled up (the softness of
a phone's lens), darkened at its corners and given film grain, so that a card looks like a
shopkeeper's snapshot rather than clip art. All of them take a few hundred ms together.
"""

from __future__ import annotations

import io
import math
import random
from collections.abc import Callable, Sequence
from functools import cache

from PIL import Image, ImageChops, ImageDraw, ImageFilter

__all__ = ["PHOTO_SIZE", "SCENES", "draw", "jpeg", "scenes_for"]

# The drawn photo's size (4:3, as a phone takes them); painted at half of it.
PHOTO_SIZE = (1200, 900)
_W, _H = PHOTO_SIZE[0] // 2, PHOTO_SIZE[1] // 2

RGB = tuple[int, int, int]
Box = tuple[int, int, int, int]


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return (round(a[0] + (b[0] - a[0]) * t), round(a[1] + (b[1] - a[1]) * t),
            round(a[2] + (b[2] - a[2]) * t))


def _jitter(c: RGB, rng: random.Random, amount: int = 12) -> RGB:
    d = rng.randint(-amount, amount)
    return (max(0, min(255, c[0] + d)), max(0, min(255, c[1] + d)), max(0, min(255, c[2] + d)))


@cache
def _radial() -> Image.Image:
    return Image.radial_gradient("L")  # 256 x 256, 0 in the middle, 255 at the edge's middle


@cache
def _linear() -> Image.Image:
    return Image.linear_gradient("L")  # 256 x 256, 0 at the top, 255 at the bottom


def _sphere_shade(w: int, h: int, light: tuple[float, float] = (0.35, 0.3)) -> Image.Image:
    """0 where the light hits (a fraction of the box), growing to 255 away from it."""
    # The radial gradient is 255 at 128 px from its middle: a box of 128 around the light
    # point, scaled to w x h, reaches 255 a box's width away from it.
    x, y = 128 - light[0] * 128, 128 - light[1] * 128
    return _radial().resize((w, h), Image.Resampling.BILINEAR, box=(x, y, x + 128, y + 128))


def _cylinder_shade(w: int, h: int, highlight: float = 0.3) -> Image.Image:
    """A vertical cylinder's shading: brightest at `highlight` of its width, dark edges."""
    row = [min(255, round(255 * abs(i / max(1, w - 1) - highlight) ** 0.8 * 1.5))
           for i in range(w)]
    strip = Image.new("L", (w, 1))
    strip.putdata(row)
    return strip.resize((w, h), Image.Resampling.NEAREST)


def _vertical_shade(w: int, h: int) -> Image.Image:
    return _linear().resize((w, h), Image.Resampling.BILINEAR)


def _mask(w: int, h: int, shape: str | Sequence[tuple[float, float]]) -> Image.Image:
    m = Image.new("L", (w, h))
    d = ImageDraw.Draw(m)
    if shape == "ellipse":
        d.ellipse((0, 0, w - 1, h - 1), fill=255)
    elif shape == "rect":
        d.rectangle((0, 0, w - 1, h - 1), fill=255)
    elif shape == "rounded":
        d.rounded_rectangle((0, 0, w - 1, h - 1), radius=min(w, h) // 5, fill=255)
    elif not isinstance(shape, str):
        d.polygon([(x * (w - 1), y * (h - 1)) for x, y in shape], fill=255)
    return m


def _paint(img: Image.Image, box: Box, bright: RGB, dark: RGB, shade: Image.Image,
           shape: str | Sequence[tuple[float, float]] = "ellipse",
           middle: RGB | None = None) -> None:
    """Fill `shape` within `box` with colours from `bright` to `dark` as `shade` says (through
    `middle` for most of the surface when given: a small highlight, the object's own colour,
    then its shadowed side)."""
    x0, y0, x1, y1 = box
    w, h = max(1, x1 - x0), max(1, y1 - y0)
    if shade.size != (w, h):
        shade = shade.resize((w, h), Image.Resampling.BILINEAR)
    if middle is None:
        layer = Image.composite(Image.new("RGB", (w, h), dark),
                                Image.new("RGB", (w, h), bright), shade)
    else:
        layer = Image.composite(Image.new("RGB", (w, h), middle),
                                Image.new("RGB", (w, h), bright), shade.point(_TO_MIDDLE))
        layer.paste(dark, (0, 0), shade.point(_TO_DARK))
    img.paste(layer, (x0, y0), _mask(w, h, shape))


# The three-stop shading's ramps: highlight to colour over the first fifth of the shade,
# colour to shadow from the middle on.
_TO_MIDDLE = [min(255, v * 5) for v in range(256)]
_TO_DARK = [max(0, (v - 120) * 255 // 135) for v in range(256)]


def _ball(img: Image.Image, box: Box, color: RGB, light: tuple[float, float] = (0.35, 0.3),
          shape: str | Sequence[tuple[float, float]] = "ellipse", gloss: float = 0.35) -> None:
    w, h = box[2] - box[0], box[3] - box[1]
    _paint(img, box, _mix(color, (255, 255, 255), gloss), _mix(color, (0, 0, 0), 0.6),
           _sphere_shade(max(1, w), max(1, h), light), shape, middle=color)


def _cylinder(img: Image.Image, box: Box, color: RGB,
              shape: str | Sequence[tuple[float, float]] = "rect", gloss: float = 0.3) -> None:
    w, h = box[2] - box[0], box[3] - box[1]
    _paint(img, box, _mix(color, (255, 255, 255), gloss), _mix(color, (0, 0, 0), 0.6),
           _cylinder_shade(max(1, w), max(1, h)), shape, middle=color)


class _Shadows:
    """Soft contact shadows, gathered and blurred once before the objects are painted."""

    def __init__(self) -> None:
        self.layer = Image.new("L", (_W, _H))
        self.draw = ImageDraw.Draw(self.layer)

    def add(self, box: Box, strength: int = 150) -> None:
        self.draw.ellipse(box, fill=strength)

    def apply(self, img: Image.Image, radius: float = 7) -> None:
        alpha = self.layer.filter(ImageFilter.BoxBlur(radius))
        img.paste((20, 12, 6), (0, 0), alpha)


def _wood(img: Image.Image, top: int, color: RGB, rng: random.Random) -> None:
    """A wooden table or board from `top` down: planks with grain, lit from the back."""
    d = ImageDraw.Draw(img)
    plank_h = rng.randint(38, 60)
    y, i = top, 0
    while y < _H:
        tone = _jitter(color, rng, 14)
        d.rectangle((0, y, _W, y + plank_h), fill=tone)
        for _ in range(14):
            gy = y + rng.uniform(2, plank_h - 2)
            amp, freq, phase = rng.uniform(1, 3), rng.uniform(0.01, 0.03), rng.uniform(0, 6)
            pts = [(x, gy + amp * math.sin(freq * x + phase)) for x in range(0, _W + 8, 8)]
            d.line(pts, fill=_mix(tone, (0, 0, 0), rng.uniform(0.08, 0.22)), width=1)
        d.line((0, y, _W, y), fill=_mix(tone, (0, 0, 0), 0.45), width=2)
        y += plank_h
        i += 1
    # Farther is darker: a gradient from the table's back edge.
    band = _vertical_shade(_W, _H - top).point(lambda v: 110 - v * 110 // 255)
    img.paste((15, 8, 2), (0, top), band)


def _wall(img: Image.Image, bottom: int, color: RGB, rng: random.Random,
          bokeh: Sequence[RGB] = ()) -> None:
    """An out-of-focus back wall down to `bottom`, with blurred lights (bokeh)."""
    wall = Image.new("RGB", (_W, bottom), _mix(color, (255, 255, 255), 0.15))
    wall.paste(_mix(color, (0, 0, 0), 0.25), (0, 0), _vertical_shade(_W, bottom))
    if bokeh:
        d = ImageDraw.Draw(wall)
        for _ in range(rng.randint(8, 16)):
            r = rng.randint(6, 22)
            x, y = rng.randint(0, _W), rng.randint(0, bottom)
            d.ellipse((x - r, y - r, x + r, y + r), fill=_jitter(rng.choice(bokeh), rng, 20))
    img.paste(wall.filter(ImageFilter.BoxBlur(6)), (0, 0))


def _grain(size: tuple[int, int], seed: int) -> Image.Image:
    noise = Image.frombytes("L", size, random.Random(seed).randbytes(size[0] * size[1]))
    return noise.point(lambda v: v * 14 // 255)  # 0..14, added with an offset of -7


@cache
def _vignette() -> Image.Image:
    # Darkens the corners by up to about a third, as a phone's lens does.
    return _radial().resize((_W, _H)).point(lambda v: min(255, v * v // 700))


def _finish(img: Image.Image, seed: int) -> Image.Image:
    img.paste((0, 0, 0), (0, 0), _vignette())
    grain = _grain((_W, _H), seed)
    img = ImageChops.add(img, Image.merge("RGB", (grain, grain, grain)), 1.0, -7)
    # Scaled up last: the softness of a phone's lens and its grain, not crisp vector edges.
    return img.resize(PHOTO_SIZE, Image.Resampling.BICUBIC)


# ---- the scenes -------------------------------------------------------------------------

_BERRY = [(0.5, 1.0), (0.2, 0.75), (0.04, 0.42), (0.1, 0.12), (0.35, 0.0), (0.65, 0.0),
          (0.9, 0.12), (0.96, 0.42), (0.8, 0.75)]
_LEAF = [(0.0, 0.5), (0.3, 0.1), (0.7, 0.0), (1.0, 0.5), (0.7, 1.0), (0.3, 0.9)]


def _strawberry(img: Image.Image, cx: float, cy: float, r: float, rng: random.Random) -> None:
    box = (round(cx - r), round(cy - r), round(cx + r), round(cy + r * 1.25))
    _ball(img, box, _jitter((200, 22, 30), rng, 18), shape=_BERRY, gloss=0.45)
    d = ImageDraw.Draw(img)
    for _ in range(int(r)):
        sx, sy = rng.uniform(0.2, 0.8), rng.uniform(0.15, 0.8)
        px, py = box[0] + sx * (box[2] - box[0]), box[1] + sy * (box[3] - box[1])
        if abs(sx - 0.5) < 0.42 - sy * 0.3:
            d.point((px, py), fill=(236, 206, 96))
    for k in range(5):  # the calyx: a star of leaves on top
        a = k * 2 * math.pi / 5 + rng.uniform(-0.3, 0.3)
        lx, ly = cx + math.cos(a) * r * 0.5, box[1] + math.sin(a) * r * 0.25
        d.polygon([(cx, box[1] + 2), (lx - 2, ly), (lx + 2, ly)], fill=(40, 110, 40))


def strawberries(rng: random.Random) -> Image.Image:
    img = Image.new("RGB", (_W, _H))
    _wall(img, 220, (214, 206, 180), rng, bokeh=[(250, 240, 200), (140, 180, 120)])
    _wood(img, 220, (150, 104, 62), rng)
    shadows = _Shadows()
    px0, px1, ptop, pbot = 150, 450, 190, 380
    shadows.add((px0 - 10, pbot - 20, px1 + 30, pbot + 22), 170)
    loose = [(rng.uniform(70, 130), rng.uniform(350, 410)) for _ in range(2)]
    loose += [(rng.uniform(480, 540), rng.uniform(340, 400))]
    for x, y in loose:
        shadows.add((round(x - 22), round(y + 4), round(x + 26), round(y + 30)), 140)
    shadows.apply(img)
    green = (46, 128, 70)
    # The punnet's back wall, the berries heaped inside, then its front wall.
    _cylinder(img, (px0 + 8, ptop, px1 - 8, ptop + 40), _mix(green, (0, 0, 0), 0.3))
    for row in range(3):
        y = ptop + 18 + row * 16
        x = px0 + 30 + (row % 2) * 18
        while x < px1 - 30:
            _strawberry(img, x + rng.uniform(-4, 4), y + rng.uniform(-5, 5),
                        rng.uniform(20, 27), rng)
            x += rng.uniform(34, 42)
    _cylinder(img, (px0, ptop + 60, px1, pbot),
              green, shape=[(0, 0), (1, 0), (0.93, 1), (0.07, 1)], gloss=0.25)
    d = ImageDraw.Draw(img)
    for k in range(1, 12):  # slots in the plastic
        x = px0 + k * (px1 - px0) / 12
        d.line((x, ptop + 75, x - (x - (px0 + px1) / 2) * 0.06, pbot - 15),
               fill=_mix(green, (0, 0, 0), 0.45), width=4)
    d.line((px0, ptop + 62, px1, ptop + 62), fill=_mix(green, (255, 255, 255), 0.35), width=4)
    for x, y in loose:
        _strawberry(img, x, y, rng.uniform(22, 28), rng)
    return img


def vegetables(rng: random.Random) -> Image.Image:
    img = Image.new("RGB", (_W, _H))
    _wall(img, 170, (120, 140, 110), rng, bokeh=[(230, 230, 190)])
    _wood(img, 170, (120, 86, 52), rng)
    shadows = _Shadows()
    shadows.add((40, 330, 560, 420), 190)
    shadows.apply(img)
    crate = (60, 150, 540, 400)
    _paint(img, (crate[0], crate[1], crate[2], crate[1] + 60), (90, 62, 36), (60, 40, 22),
           _vertical_shade(480, 60), "rect")  # the crate's inside back
    for i in range(4):  # lettuces at the back
        x = 110 + i * 115 + rng.randint(-10, 10)
        _ball(img, (x - 62, 110, x + 62, 215), _jitter((96, 160, 60), rng), gloss=0.45)
        d = ImageDraw.Draw(img)
        for k in range(6):
            a = -math.pi / 2 + (k - 2.5) * 0.45
            d.line((x, 200, x + math.cos(a) * 55, 200 + math.sin(a) * 75),
                   fill=(190, 220, 150), width=2)
    d = ImageDraw.Draw(img)
    for _ in range(9):  # carrots lying across
        cx, cy = rng.uniform(90, 470), rng.uniform(200, 250)
        ln, ang = rng.uniform(110, 150), rng.uniform(-0.35, 0.35)
        tip = (cx + math.cos(ang) * ln, cy + math.sin(ang) * ln * 0.3)
        nx, ny = -math.sin(ang) * 10, math.cos(ang) * 10
        d.polygon([(cx + nx, cy + ny), (cx - nx, cy - ny), tip],
                  fill=_jitter((226, 112, 30), rng, 14))
        d.line([(cx + nx * 0.3, cy + ny * 0.3), tip], fill=(246, 160, 80), width=2)
        d.line([(cx, cy), (cx - 30, cy - 26)], fill=(70, 130, 40), width=4)
    for i in range(6):  # tomatoes in front
        x = 110 + i * 76 + rng.randint(-8, 8)
        y = 262 + rng.randint(-8, 8)
        _ball(img, (x - 40, y - 36, x + 40, y + 36), _jitter((206, 36, 24), rng), gloss=0.5)
        ImageDraw.Draw(img).polygon([(x - 12, y - 34), (x, y - 42), (x + 12, y - 34),
                                     (x, y - 28)], fill=(50, 110, 40))
    # The crate's front planks.
    for k in range(3):
        y0 = 300 + k * 34
        _paint(img, (crate[0], y0, crate[2], y0 + 30), (196, 160, 110), (140, 104, 64),
               _vertical_shade(480, 30), "rect")
    return img


def bread(rng: random.Random) -> Image.Image:
    img = Image.new("RGB", (_W, _H))
    _wall(img, 200, (196, 170, 130), rng, bokeh=[(255, 226, 170)])
    _wood(img, 200, (168, 120, 70), rng)
    shadows = _Shadows()
    loaves = []
    for i in range(3):
        cx, cy = 150 + i * 150 + rng.randint(-15, 15), 270 + rng.randint(-30, 30)
        w, h = rng.randint(150, 190), rng.randint(80, 100)
        loaves.append((cx, cy, w, h))
        shadows.add((cx - w // 2, cy + h // 4, cx + w // 2 + 20, cy + h // 2 + 22), 170)
    shadows.apply(img)
    for cx, cy, w, h in sorted(loaves, key=lambda loaf: loaf[1]):
        crust = _jitter((176, 108, 44), rng, 16)
        _ball(img, (cx - w // 2, cy - h // 2, cx + w // 2, cy + h // 2), crust,
              light=(0.4, 0.2), gloss=0.4)
        d = ImageDraw.Draw(img)
        for k in range(4):  # the baker's scores: a pale cut with a dark lip
            x = cx - w // 2 + (k + 0.8) * w / 5
            d.arc((x - 24, cy - h // 2 + 8, x + 24, cy + h // 2 - 10), 200, 320,
                  fill=(238, 206, 150), width=5)
            d.arc((x - 22, cy - h // 2 + 12, x + 26, cy + h // 2 - 6), 200, 320,
                  fill=_mix(crust, (0, 0, 0), 0.4), width=2)
        for _ in range(60):  # flour
            fx, fy = rng.gauss(cx, w / 5), rng.gauss(cy - h / 6, h / 6)
            d.point((fx, fy), fill=(245, 238, 225))
    return img


def cheese(rng: random.Random) -> Image.Image:
    img = Image.new("RGB", (_W, _H))
    _wall(img, 190, (150, 130, 100), rng, bokeh=[(240, 220, 160), (200, 180, 140)])
    _wood(img, 190, (176, 136, 90), rng)
    shadows = _Shadows()
    shadows.add((70, 300, 480, 410), 190)
    shadows.add((380, 330, 560, 400), 160)
    shadows.apply(img)
    rind, paste = _jitter((196, 150, 70), rng), _jitter((246, 222, 140), rng)
    x0, x1, top, side = 90, 440, 170, 90
    # The wheel: its rind (a cylinder's side) under its top.
    _cylinder(img, (x0, top + 45, x1, top + 45 + side), rind, gloss=0.2)
    _ball(img, (x0, top + side, x1, top + side + 90), _mix(rind, (0, 0, 0), 0.2), gloss=0.1)
    _paint(img, (x0, top, x1, top + 90), _mix(paste, (255, 255, 255), 0.3), paste,
           _sphere_shade(x1 - x0, 90, (0.4, 0.3)))
    d = ImageDraw.Draw(img)
    d.ellipse((x0, top, x1, top + 90), outline=_mix(rind, (0, 0, 0), 0.1), width=6)
    # A wedge in front, its cut faces showing the paste and its holes.
    wx, wy = 400, 300
    _paint(img, (wx, wy, wx + 150, wy + 60), paste, _mix(paste, (0, 0, 0), 0.2),
           _vertical_shade(150, 60), [(0, 0.0), (1, 0.5), (1, 1), (0, 0.55)])
    _paint(img, (wx, wy - 30, wx + 150, wy + 30), _mix(paste, (255, 255, 255), 0.2), paste,
           _vertical_shade(150, 60), [(0, 0.5), (0.35, 0), (1, 1)])
    d.line((wx, wy + 1, wx, wy + 33), fill=rind, width=6)
    for _ in range(7):
        hx, hy = rng.uniform(wx + 20, wx + 130), rng.uniform(wy + 25, wy + 48)
        r = rng.uniform(3, 7)
        d.ellipse((hx - r, hy - r * 0.7, hx + r, hy + r * 0.7), fill=_mix(paste, (0, 0, 0), 0.3))
    return img


def flowers(rng: random.Random) -> Image.Image:
    img = Image.new("RGB", (_W, _H))
    _wall(img, _H, (226, 220, 212), rng, bokeh=[(250, 250, 240), (200, 220, 190)])
    shadows = _Shadows()
    shadows.add((200, 400, 440, 440), 160)
    shadows.apply(img, 10)
    d = ImageDraw.Draw(img)
    heads = [(rng.uniform(150, 450), rng.uniform(60, 230)) for _ in range(11)]
    for hx, hy in heads:  # stems, then leaves
        d.line((hx, hy, 300 + (hx - 300) * 0.2, 330), fill=(60, 110, 50), width=4)
    for _ in range(10):
        lx, ly = rng.uniform(200, 400), rng.uniform(200, 310)
        _ball(img, (round(lx), round(ly), round(lx + 70), round(ly + 26)),
              _jitter((70, 130, 60), rng), shape=_LEAF, gloss=0.3)
    palette = [(236, 120, 150), (246, 170, 186), (220, 60, 90), (250, 236, 240), (250, 180, 90)]
    for hx, hy in sorted(heads, key=lambda p: p[1]):
        base = _jitter(rng.choice(palette), rng, 10)
        r = rng.uniform(34, 50)
        for k in range(9):  # petals around, then a heart of smaller ones
            a = k * 2 * math.pi / 9 + rng.uniform(0, 0.4)
            px, py = hx + math.cos(a) * r * 0.55, hy + math.sin(a) * r * 0.45
            _ball(img, (round(px - r * 0.55), round(py - r * 0.45), round(px + r * 0.55),
                        round(py + r * 0.45)), base, gloss=0.35)
        _ball(img, (round(hx - r * 0.5), round(hy - r * 0.45), round(hx + r * 0.5),
                    round(hy + r * 0.45)), _mix(base, (120, 0, 40), 0.25), gloss=0.5)
    # The vase: glazed stoneware.
    _cylinder(img, (220, 300, 380, 420), _jitter((70, 100, 150), rng, 20),
              shape=[(0.1, 0), (0.9, 0), (1, 0.6), (0.85, 1), (0.15, 1), (0, 0.6)], gloss=0.45)
    return img


def coffee(rng: random.Random) -> Image.Image:
    img = Image.new("RGB", (_W, _H))
    _wood(img, 0, (92, 62, 40), rng)
    shadows = _Shadows()
    shadows.add((150, 150, 490, 420), 200)
    shadows.apply(img, 10)
    cx, cy = 300, 250
    _ball(img, (cx - 170, cy - 130, cx + 170, cy + 150), (238, 236, 230), (0.3, 0.25), gloss=0.5)
    d = ImageDraw.Draw(img)
    d.ellipse((cx - 120, cy - 88, cx + 120, cy + 108), outline=(214, 210, 202), width=3)
    _paint(img, (cx - 105, cy - 95, cx + 105, cy + 85), (252, 252, 250), (200, 198, 192),
           _sphere_shade(210, 180, (0.65, 0.7)))  # the cup's rim, lit from the far side
    # Handle.
    d.arc((cx + 80, cy - 40, cx + 160, cy + 30), -80, 80, fill=(226, 224, 218), width=14)
    # The coffee, its crema, and a heart poured in the milk.
    _paint(img, (cx - 88, cy - 80, cx + 88, cy + 70), (176, 112, 60), (90, 50, 24),
           _sphere_shade(176, 150, (0.5, 0.5)))
    heart = [(0.5, 1.0), (0.05, 0.45), (0.1, 0.12), (0.3, 0.0), (0.5, 0.18), (0.7, 0.0),
             (0.9, 0.12), (0.95, 0.45)]
    _paint(img, (cx - 45, cy - 40, cx + 45, cy + 40), (246, 232, 210), (214, 180, 140),
           _sphere_shade(90, 80, (0.5, 0.4)), heart)
    # A spoon on the saucer.
    _cylinder(img, (cx - 150, cy + 80, cx - 70, cy + 96), (190, 190, 196),
              shape=[(0, 0.2), (1, 0), (1, 1), (0, 0.8)], gloss=0.6)
    return img


def books(rng: random.Random) -> Image.Image:
    img = Image.new("RGB", (_W, _H), (60, 44, 32))
    _wall(img, _H, (86, 66, 48), rng)
    palette = [(140, 30, 36), (30, 70, 120), (40, 100, 70), (200, 160, 60), (230, 226, 214),
               (90, 50, 90), (200, 90, 40), (30, 30, 34), (120, 160, 180)]
    for shelf_top in (40, 240):
        x = 10
        while x < _W - 20:
            w, h = rng.randint(18, 42), rng.randint(120, 175)
            color = _jitter(rng.choice(palette), rng, 10)
            y1 = shelf_top + 185
            if rng.random() < 0.08 and x < _W - 100:  # one leaning over
                _cylinder(img, (x, y1 - h + 10, x + h // 2, y1), color,
                          shape=[(0, 0.9), (0.7, 0), (1, 0.1), (0.3, 1)], gloss=0.25)
                x += h // 2
                continue
            _cylinder(img, (x, y1 - h, x + w, y1), color, gloss=0.25)
            d = ImageDraw.Draw(img)
            band = _mix(color, (230, 200, 120), 0.6)
            for by in (y1 - h + 14, y1 - 20):
                d.line((x + 2, by, x + w - 2, by), fill=band, width=2)
            d.line((x + w // 2, y1 - h + 40, x + w // 2, y1 - h + 40 + rng.randint(30, 60)),
                   fill=band, width=2)  # the title, too small to read
            x += w + rng.randint(0, 2)
        _paint(img, (0, shelf_top + 185, _W, shelf_top + 205), (150, 110, 70), (80, 54, 30),
               _vertical_shade(_W, 20), "rect")
    return img


def _horizontal_cylinder(img: Image.Image, box: Box, color: RGB, gloss: float = 0.4) -> None:
    w, h = box[2] - box[0], box[3] - box[1]
    shade = _cylinder_shade(h, w).transpose(Image.Transpose.ROTATE_270)
    _paint(img, box, _mix(color, (255, 255, 255), gloss), _mix(color, (0, 0, 0), 0.6), shade,
           "rounded", middle=color)


def sausages(rng: random.Random) -> Image.Image:
    img = Image.new("RGB", (_W, _H))
    _wall(img, 120, (200, 200, 196), rng)
    _wood(img, 120, (196, 160, 120), rng)  # a light chopping board
    shadows = _Shadows()
    links = [(rng.uniform(80, 420), 170 + i * 44 + rng.uniform(-6, 6)) for i in range(5)]
    for x, y in links:
        shadows.add((round(x), round(y + 14), round(x + 190), round(y + 40)), 150)
    shadows.apply(img)
    for x, y in links:
        _horizontal_cylinder(img, (round(x), round(y), round(x + 180), round(y + 38)),
                             _jitter((150, 82, 52), rng, 12))
    d = ImageDraw.Draw(img)
    for _ in range(18):  # thyme and rosemary
        x, y = rng.uniform(40, 560), rng.uniform(150, 420)
        for k in range(6):
            d.line((x + k * 6, y + k * 2, x + k * 6 + 6, y + k * 2 - 5), fill=(60, 100, 50),
                   width=2)
    return img


def wine(rng: random.Random) -> Image.Image:
    img = Image.new("RGB", (_W, _H))
    _wall(img, 330, (70, 40, 30), rng, bokeh=[(250, 190, 110), (240, 150, 80)])
    _wood(img, 330, (100, 66, 40), rng)
    shadows = _Shadows()
    shadows.add((60, 320, 540, 370), 190)
    shadows.apply(img)
    glass = [(0.16, 0), (0.84, 0), (1, 0.18), (1, 1), (0, 1), (0, 0.18)]
    for i in range(4):
        x = 80 + i * 120 + rng.randint(-8, 8)
        color = rng.choice([(30, 60, 30), (60, 20, 30), (40, 50, 20), (200, 170, 100)])
        _cylinder(img, (x + 28, 70, x + 52, 160), color, gloss=0.45)  # neck
        _cylinder(img, (x + 26, 62, x + 54, 96), rng.choice([(150, 20, 30), (30, 30, 30),
                                                            (200, 170, 60)]), gloss=0.5)
        _cylinder(img, (x, 140, x + 80, 345), color, shape=glass, gloss=0.45)
        label = _jitter((236, 226, 200), rng, 10)
        _cylinder(img, (x + 6, 220, x + 74, 300), label, gloss=0.2)
        d = ImageDraw.Draw(img)
        d.line((x + 18, 245, x + 62, 245), fill=(90, 40, 40), width=3)
        d.line((x + 24, 262, x + 56, 262), fill=(120, 100, 80), width=2)
    return img


def chocolate(rng: random.Random) -> Image.Image:
    img = Image.new("RGB", (_W, _H))
    _wall(img, _H, (222, 214, 200), rng)
    shadows = _Shadows()
    shadows.add((60, 120, 440, 380), 170)
    shadows.apply(img, 9)
    dark = _jitter((70, 40, 24), rng, 10)
    for row in range(4):  # a bar, its squares bevelled and lit from the top left
        for col in range(6):
            x, y = 70 + col * 60, 110 + row * 62
            _paint(img, (x, y, x + 58, y + 60), _mix(dark, (255, 220, 190), 0.25),
                   _mix(dark, (0, 0, 0), 0.5), _sphere_shade(58, 60, (0.15, 0.15)), "rounded")
            _paint(img, (x + 9, y + 9, x + 49, y + 51), dark, _mix(dark, (0, 0, 0), 0.2),
                   _vertical_shade(40, 42), "rect")
    for _ in range(5):  # pralines
        px, py = rng.uniform(430, 540), rng.uniform(80, 380)
        _ball(img, (round(px - 28), round(py - 26), round(px + 28), round(py + 26)),
              _jitter((110, 64, 36), rng, 16), gloss=0.45)
        ImageDraw.Draw(img).arc((px - 20, py - 18, px + 20, py + 8), 200, 340,
                                fill=(236, 220, 190), width=2)
    return img


def jars(rng: random.Random) -> Image.Image:
    img = Image.new("RGB", (_W, _H))
    _wall(img, 280, (180, 170, 150), rng, bokeh=[(250, 240, 210)])
    _wood(img, 280, (140, 100, 60), rng)
    shadows = _Shadows()
    shadows.add((40, 330, 560, 380), 180)
    shadows.apply(img)
    for i in range(4):
        x = 60 + i * 125 + rng.randint(-6, 6)
        honey = _jitter(rng.choice([(220, 150, 30), (200, 110, 20), (236, 180, 60)]), rng, 10)
        _cylinder(img, (x, 150, x + 110, 350), honey, shape="rounded", gloss=0.55)
        _cylinder(img, (x + 8, 128, x + 102, 160), rng.choice([(180, 40, 40), (220, 200, 60),
                                                               (60, 90, 60)]), gloss=0.5)
        _cylinder(img, (x + 14, 220, x + 96, 290), (240, 232, 214), gloss=0.2)
        ImageDraw.Draw(img).line((x + 30, 248, x + 80, 248), fill=(120, 60, 30), width=3)
    d = ImageDraw.Draw(img)
    for _ in range(5):  # a few dried chillies in front
        cx, cy = rng.uniform(60, 520), rng.uniform(350, 420)
        _ball(img, (round(cx), round(cy), round(cx + 70), round(cy + 18)), (180, 30, 20),
              shape=[(0, 0.5), (0.2, 0), (1, 0.4), (0.2, 1)], gloss=0.4)
        d.line((cx, cy + 9, cx - 8, cy + 4), fill=(60, 90, 40), width=3)
    return img


def jackets(rng: random.Random) -> Image.Image:
    img = Image.new("RGB", (_W, _H))
    _wall(img, _H, (200, 196, 186), rng)
    d = ImageDraw.Draw(img)
    _cylinder(img, (0, 50, _W, 60), (150, 150, 156), gloss=0.6)  # the rail
    palette = [(120, 40, 40), (60, 70, 90), (140, 110, 70), (70, 90, 60), (170, 150, 120),
               (40, 40, 44)]
    coat = [(0.3, 0), (0.7, 0), (1, 0.15), (1, 1), (0, 1), (0, 0.15)]
    for i in range(6):
        x = 20 + i * 95 + rng.randint(-6, 6)
        d.line((x + 55, 55, x + 55, 85), fill=(90, 90, 90), width=3)
        d.line((x + 20, 95, x + 55, 80, x + 90, 95), fill=(120, 90, 60), width=4)
        color = _jitter(rng.choice(palette), rng, 10)
        _cylinder(img, (x, 90, x + 110, 400), color, shape=coat, gloss=0.25)
        d.line((x + 55, 110, x + 55, 400), fill=_mix(color, (0, 0, 0), 0.4), width=2)
        d.polygon([(x + 35, 92), (x + 55, 150), (x + 75, 92)], fill=_mix(color, (0, 0, 0), 0.3))
        for b in range(3):
            d.ellipse((x + 60, 170 + b * 55, x + 68, 178 + b * 55), fill=(30, 24, 20))
    return img


def pots(rng: random.Random) -> Image.Image:
    img = Image.new("RGB", (_W, _H))
    _wall(img, 260, (210, 206, 196), rng)
    _wood(img, 260, (150, 120, 90), rng)
    shadows = _Shadows()
    shadows.add((20, 360, 580, 410), 180)
    shadows.apply(img)
    pot = [(0, 0), (1, 0), (0.85, 1), (0.15, 1)]
    specs = [(40, 180, 150), (200, 150, 150), (370, 200, 120), (120, 290, 90), (300, 300, 80)]
    for x, top, w in specs:
        color = rng.choice([(186, 90, 50), (200, 110, 60), (60, 110, 150), (70, 130, 100)])
        color = _jitter(color, rng, 10)
        bottom = 380 if top < 290 else 395
        _cylinder(img, (x, top + 20, x + w, bottom), color, shape=pot, gloss=0.35)
        _cylinder(img, (x - 6, top, x + w + 6, top + 28), _mix(color, (255, 255, 255), 0.1),
                  gloss=0.45)
    return img


# Each scene: the photo a shop of these categories would take (schemas.categories codes).
SCENES: dict[str, Callable[[random.Random], Image.Image]] = {
    "strawberries": strawberries, "vegetables": vegetables, "bread": bread,
    "cheese": cheese, "flowers": flowers, "coffee": coffee, "books": books,
    "sausages": sausages, "wine": wine, "chocolate": chocolate, "jars": jars,
    "jackets": jackets, "pots": pots,
}
_BY_CATEGORY: dict[str, tuple[str, ...]] = {
    "bakery": ("bread",), "cafe": ("coffee",), "cheese": ("cheese",), "bookshop": ("books",),
    "greengrocer": ("strawberries", "vegetables"), "butcher": ("sausages",),
    "florist": ("flowers",), "wine": ("wine",), "chocolate": ("chocolate",),
    "delicatessen": ("jars",), "secondhand": ("jackets",), "hardware": ("pots",),
    "grocery": ("strawberries", "vegetables"),
}


def scenes_for(category: str) -> tuple[str, ...]:
    """The scenes that fit a shop of this category (a jar on a shelf when none does)."""
    return _BY_CATEGORY.get(category, ("jars",))


def draw(scene: str, seed: int = 0) -> Image.Image:
    """The scene `scene` drawn with `seed`, as an RGB photo of PHOTO_SIZE."""
    rng = random.Random(f"{scene}:{seed}")
    return _finish(SCENES[scene](rng), rng.randrange(2**32))


def jpeg(image: Image.Image, quality: int = 88) -> bytes:
    """The photo as a phone would upload it."""
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality)
    return buf.getvalue()
