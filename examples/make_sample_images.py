"""Draw the sample site's pictures with Pillow: the forum banner of ``2024-unpsf-incheon`` and the bulletin logo.

    python examples/make_sample_images.py [--out examples/unpog/content/images]

Both are illustrations made in code (no photo, no font file, no network), so the sample site carries no
third-party image and anyone can redraw them. The drawing is deterministic: the same Pillow version writes the
same bytes (a seeded random generator places the audience; PNG metadata is left out). The banner is 1200x630,
the size social networks and mail clients show link images at; both stay well under 150 KB so that a mail
carrying them stays light.

The banner's alt text lives in the article's front matter (``image.alt``): the picture shows an audience in a
conference hall facing a stage with a globe emblem on its screen, with the towers of Songdo, Incheon, and the sea
through the windows behind.
"""

from __future__ import annotations

import argparse
import math
import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

HERE = Path(__file__).resolve().parent
IMAGES = HERE / "unpog" / "content" / "images"

WIDTH, HEIGHT = 1200, 630
SCALE = 2                          # drawn at twice the size, then reduced: smooth edges without a renderer
UN_BLUE = (0, 158, 219)            # the UN's own blue
NAVY = (11, 79, 138)               # the bulletin's masthead colour
SEED = 2024


def lerp(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> tuple[int, int, int]:
    return (round(a[0] + (b[0] - a[0]) * t), round(a[1] + (b[1] - a[1]) * t), round(a[2] + (b[2] - a[2]) * t))


def vertical_gradient(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], top: tuple[int, int, int],
                      bottom: tuple[int, int, int]) -> None:
    x0, y0, x1, y1 = box
    for y in range(y0, y1):
        draw.line([(x0, y), (x1, y)], fill=lerp(top, bottom, (y - y0) / max(1, y1 - y0 - 1)))


def globe(draw: ImageDraw.ImageDraw, cx: int, cy: int, r: int, colour: tuple[int, int, int], width: int) -> None:
    """A globe of meridians and parallels, as on the UN emblem (drawn, not copied)."""
    draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=colour, width=width)
    for k in (0.35, 0.7):
        draw.ellipse([cx - r * k, cy - r, cx + r * k, cy + r], outline=colour, width=width)
    draw.line([(cx, cy - r), (cx, cy + r)], fill=colour, width=width)
    for k in (-0.5, 0.0, 0.5):
        half = r * (1 - k * k) ** 0.5
        y = cy + r * k
        draw.line([(cx - half, y), (cx + half, y)], fill=colour, width=width)
    # two branches of leaves curving up around it from below (y grows downwards: 90 degrees is the bottom)
    for i in range(6):
        a = math.radians(105 + i * 22)
        for mirror in (1, -1):
            lx, ly = cx + mirror * math.cos(a) * r * 1.3, cy + math.sin(a) * r * 1.3
            leaf = r * 0.15
            draw.ellipse([lx - leaf, ly - leaf * 0.6, lx + leaf, ly + leaf * 0.6], fill=colour)


def banner() -> Image.Image:
    rng = random.Random(SEED)
    w, h = WIDTH * SCALE, HEIGHT * SCALE
    image = Image.new("RGB", (w, h))
    draw = ImageDraw.Draw(image)

    # Through the hall's glass wall: a morning sky, the sea and the towers of Songdo.
    horizon = int(h * 0.47)
    vertical_gradient(draw, (0, 0, w, horizon), (120, 176, 222), (214, 234, 246))
    draw.ellipse([int(w * 0.78), int(h * 0.07), int(w * 0.86), int(h * 0.07) + int(w * 0.08)], fill=(255, 244, 214))
    x = 0
    while x < w:
        tower_w = rng.randint(40, 110) * SCALE // 2
        tower_h = rng.randint(int(h * 0.08), int(h * 0.30))
        shade = rng.choice([(88, 128, 168), (104, 146, 184), (76, 114, 152)])
        top = horizon - tower_h
        draw.rectangle([x, top, x + tower_w, horizon], fill=shade)
        if rng.random() < 0.35:   # Songdo's slanted roofs
            draw.polygon([(x, top), (x + tower_w, top - tower_w // 2), (x + tower_w, top)], fill=shade)
        window = lerp(shade, (230, 240, 250), 0.45)
        for wy in range(top + 10, horizon - 8, 18):
            draw.line([(x + 6, wy), (x + tower_w - 6, wy)], fill=window, width=3)
        x += tower_w + rng.randint(4, 30)
    vertical_gradient(draw, (0, horizon, w, int(h * 0.55)), (96, 150, 190), (70, 122, 166))
    for i in range(40):
        ry = rng.randint(horizon + 6, int(h * 0.55) - 4)
        rx = rng.randint(0, w)
        draw.line([(rx, ry), (rx + rng.randint(40, 160), ry)], fill=(150, 194, 222), width=3)
    # The glass wall's mullions.
    for mx in range(0, w + 1, w // 8):
        draw.rectangle([mx - 5, 0, mx + 5, int(h * 0.55)], fill=(52, 64, 82))
    draw.rectangle([0, int(h * 0.55) - 8, w, int(h * 0.55)], fill=(52, 64, 82))

    # The hall: a wall, the stage and its screen.
    hall_top = int(h * 0.55)
    vertical_gradient(draw, (0, hall_top, w, h), (44, 56, 74), (24, 30, 42))
    screen = (int(w * 0.30), int(h * 0.10), int(w * 0.70), int(h * 0.46))
    draw.rectangle([screen[0] - 12, screen[1] - 12, screen[2] + 12, screen[3] + 12], fill=(30, 36, 48))
    vertical_gradient(draw, screen, NAVY, (8, 54, 98))
    cx, cy = (screen[0] + screen[2]) // 2, (screen[1] + screen[3]) // 2 - int(h * 0.02)
    globe(draw, cx, cy - int(h * 0.015), int(h * 0.10), (255, 255, 255), 6)
    for i, bar in enumerate((0.30, 0.20)):
        y = screen[3] - int(h * 0.045) + i * 22
        draw.rounded_rectangle([cx - int(w * bar / 2), y, cx + int(w * bar / 2), y + 12], radius=6,
                               fill=(190, 214, 236))
    stage_y = int(h * 0.60)
    draw.polygon([(int(w * 0.18), stage_y), (int(w * 0.82), stage_y), (int(w * 0.90), stage_y + 50),
                  (int(w * 0.10), stage_y + 50)], fill=(70, 84, 104))
    draw.rectangle([int(w * 0.10), stage_y + 50, int(w * 0.90), stage_y + 70], fill=(40, 48, 62))
    # A speaker at the lectern, and a UN-blue banner on either side of the stage.
    lx = int(w * 0.62)
    draw.ellipse([lx - 22, stage_y - 150, lx + 22, stage_y - 106], fill=(150, 104, 80))
    draw.rounded_rectangle([lx - 40, stage_y - 104, lx + 40, stage_y - 10], radius=18, fill=(34, 42, 58))
    draw.polygon([(lx - 60, stage_y - 70), (lx + 60, stage_y - 70), (lx + 46, stage_y + 20),
                  (lx - 46, stage_y + 20)], fill=(232, 236, 242))
    globe(draw, lx, stage_y - 28, 22, UN_BLUE, 3)
    for bx in (int(w * 0.12), int(w * 0.84)):
        draw.rectangle([bx, int(h * 0.14), bx + int(w * 0.04), int(h * 0.58)], fill=UN_BLUE)
        globe(draw, bx + int(w * 0.02), int(h * 0.24), int(w * 0.014), (255, 255, 255), 3)

    # The audience, row after row, nearer rows larger: heads and shoulders in varied clothes.
    skins = [(241, 194, 160), (224, 172, 130), (198, 140, 100), (160, 110, 80), (120, 82, 60), (250, 214, 184)]
    hair = [(30, 26, 24), (60, 44, 32), (96, 70, 48), (20, 20, 24), (150, 130, 110), (200, 196, 190)]
    clothes = [(30, 58, 96), (52, 52, 60), (120, 30, 44), (20, 96, 100), (86, 60, 120), (200, 200, 205),
               (0, 120, 190), (160, 110, 40), (36, 36, 40)]
    rows = 6
    for row in range(rows):
        t = row / (rows - 1)
        size = int((26 + 42 * t) * SCALE / 2)
        y = int(h * 0.74 + t * h * 0.30)
        spacing = int(size * 2.3)
        offset = rng.randint(0, spacing)
        for px in range(-spacing + offset, w + spacing, spacing):
            jx = px + rng.randint(-size // 3, size // 3)
            jy = y + rng.randint(-size // 5, size // 5)
            body = rng.choice(clothes)
            draw.rounded_rectangle([jx - size, jy + size * 0.7, jx + size, jy + size * 3.2], radius=size // 1.3,
                                   fill=body)
            # seen from behind, facing the stage: the neck, the ears, then the back of the head
            skin = rng.choice(skins)
            draw.rectangle([jx - size * 0.25, jy + size * 0.3, jx + size * 0.25, jy + size * 0.85], fill=skin)
            for ear in (-1, 1):
                draw.ellipse([jx + ear * size * 0.55 - size * 0.12, jy - size * 0.05,
                              jx + ear * size * 0.55 + size * 0.12, jy + size * 0.3], fill=skin)
            draw.ellipse([jx - size * 0.56, jy - size * 0.6, jx + size * 0.56, jy + size * 0.62],
                         fill=rng.choice(hair))
            if rng.random() < 0.15:   # a lanyard strap over the shoulders
                draw.line([(jx - size * 0.45, jy + size * 0.8), (jx - size * 0.2, jy + size * 3.0)],
                          fill=UN_BLUE, width=max(2, size // 8))
        # the seats' row backs between rows
        draw.rectangle([0, int(y + size * 2.6), w, int(y + size * 2.6) + max(4, size // 4)], fill=(20, 24, 34))

    # Soft light from the stage: a glow over the upper hall.
    glow = Image.new("L", (w, h), 0)
    ImageDraw.Draw(glow).ellipse([int(w * 0.2), int(h * 0.0), int(w * 0.8), int(h * 0.75)], fill=70)
    glow = glow.filter(ImageFilter.GaussianBlur(80))
    image = Image.composite(Image.new("RGB", (w, h), (255, 250, 235)), image, glow)

    image = image.resize((WIDTH, HEIGHT), Image.Resampling.LANCZOS)
    # A palette of 128 colours keeps the PNG small; no dithering, so flat areas stay flat (and compress).
    return image.quantize(colors=128, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)


def logo() -> Image.Image:
    """The bulletin's logo: a UN-blue globe in a rounded square and UNPOG in Pillow's own bundled font (Aileron,
    under the SIL Open Font License), made heavier with a stroke: no font file of the system is read."""
    from PIL import ImageFont

    s = SCALE * 2
    h = 96 * s
    font = ImageFont.load_default(size=int(h * 0.62))
    text = "UNPOG"
    left, top, right, bottom = font.getbbox(text, stroke_width=3 * s)
    w = h + 22 * s + (right - left) + 8 * s
    image = Image.new("RGBA", (w, h), (255, 255, 255, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle([0, 0, h - 1, h - 1], radius=h // 5, fill=UN_BLUE)
    globe(draw, h // 2, h // 2 - 4 * s, int(h * 0.26), (255, 255, 255), 3 * s)
    draw.text((h + 22 * s - left, (h - (bottom - top)) // 2 - top), text, font=font, fill=NAVY,
              stroke_width=3 * s, stroke_fill=NAVY)
    image = image.resize((w // s, h // s), Image.Resampling.LANCZOS)
    return image.quantize(colors=64, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=IMAGES, help="folder to write the PNG files into")
    options = parser.parse_args()
    options.out.mkdir(parents=True, exist_ok=True)
    for name, picture in (("unpsf-2024.png", banner()), ("unpog-logo.png", logo())):
        path = options.out / name
        picture.save(path, format="PNG", optimize=True)   # no text chunks: the bytes depend on the pixels only
        print(f"{path} {picture.width}x{picture.height} {path.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
