"""``python -m unite draw molecules|crystals``: pictures of generated structures.

Chemists look at structures before they read rates. ``molecules`` draws a grid of RDKit 2D
depictions of the bonds OpenBabel perceived from the 3D coordinates (the bonds the validity
metric judges), each framed green when it is valid under the chosen validity protocol
(default ADiT's) and in one piece, orange when valid but in several fragments, red when
invalid, with its (heavy-atom) SMILES. ``crystals`` draws a projection of each
unit cell (the 12 cell edges and the atoms at their Cartesian positions, Jmol colours,
element symbols), titled with the reduced formula and framed green when the crystal is valid
(structural and compositional validity of :mod:`unite.metrics.crystals`).

Input: a sample file (``unite sample``/``gather``) or a reconstruction file (its ``recon_*``
arrays are drawn).
"""

from __future__ import annotations

import argparse
import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from unite.errors import UserError

VALID_RGB = (30, 150, 60)
INVALID_RGB = (200, 40, 40)
STATE_RGB = {"valid": VALID_RGB, "fragmented": (225, 140, 0), "invalid": INVALID_RGB}
CELL_EDGES = [(0, 1), (0, 2), (0, 4), (1, 3), (1, 5), (2, 3), (2, 6), (3, 7), (4, 5), (4, 6),
              (5, 7), (6, 7)]  # corners indexed by bits (a, b, c)


# -- molecules ------------------------------------------------------------------------------
def perceived_molecule(types: np.ndarray, positions: np.ndarray, protocol: str = "adit"):
    """RDKit molecule with OpenBabel's perceived bonds, hydrogens folded into their heavy
    atoms for drawing: sanitised when the protocol accepts it, else as parsed (unsanitised), so
    that invalid molecules can be drawn too. None if nothing can be read."""
    from rdkit import Chem

    from unite.metrics.molecules import to_molecule, to_rdkit

    molecule = to_molecule(types, positions)
    mol = to_rdkit(molecule, protocol)
    if mol is not None:
        try:
            return Chem.RemoveHs(mol)
        except Exception:  # keep the explicit hydrogens rather than fail the picture
            return mol
    mol = to_rdkit(molecule, protocol, sanitize=False)
    if mol is None:
        return None
    mol.UpdatePropertyCache(strict=False)
    Chem.FastFindRings(mol)
    try:
        return Chem.RemoveHs(mol, sanitize=False)
    except Exception:  # hydrogens RDKit cannot remove (e.g. bonded twice): keep them
        return mol


def display_smiles(types, positions, protocol: str) -> str:
    """Heavy-atom SMILES of the largest fragment, for a legend (the metric's SMILES keeps the
    explicit hydrogens and is too long to read)."""
    from rdkit import Chem

    from unite.metrics.molecules import largest_fragment, to_molecule, to_rdkit

    try:
        mol = largest_fragment(to_rdkit(to_molecule(types, positions), protocol))
        return Chem.MolToSmiles(Chem.RemoveHs(mol))
    except Exception:
        return "?"


def molecule_tile(types, positions, protocol: str, size: int = 220):
    """(PIL image of one molecule in a coloured frame, state): state "valid" (one fragment),
    "fragmented" (valid, several fragments) or "invalid"."""
    from PIL import Image, ImageDraw, ImageFont
    from rdkit.Chem import Draw, rdDepictor

    from unite.metrics.molecules import parse

    smiles, fragments = parse(types, positions, protocol)
    state = "invalid" if smiles is None else ("valid" if fragments == 1 else "fragmented")
    mol = perceived_molecule(types, positions, protocol)
    legend = "invalid"
    if smiles is not None:
        legend = display_smiles(types, positions, protocol)
        legend = legend if len(legend) <= 30 else legend[:28] + ".."
        if fragments > 1:
            legend = f"{fragments} fragments; largest {legend}"[:36]
    tile = Image.new("RGB", (size, size), (255, 255, 255))
    if mol is not None and mol.GetNumAtoms():
        try:
            rdDepictor.Compute2DCoords(mol)
            picture = Draw.MolToImage(mol, size=(size, size - 18), kekulize=False,
                                      wedgeBonds=False).convert("RGB")
            tile.paste(picture.resize((size, size - 18)), (0, 0))
        except Exception:  # RDKit cannot lay it out: the frame and legend still say what it is
            pass
    draw = ImageDraw.Draw(tile)
    colour = STATE_RGB[state]
    draw.rectangle([0, 0, size - 1, size - 1], outline=colour, width=4)
    draw.text((6, size - 16), legend, fill=colour, font=ImageFont.load_default())
    return tile, state


def molecule_grid(types: np.ndarray, positions: np.ndarray, out: str | Path, *, count: int = 24,
                  cols: int = 6, protocol: str = "adit", title: str = "") -> dict:
    """Grid PNG of the first ``count`` molecules -> summary (drawn, valid among them)."""
    from PIL import Image, ImageDraw, ImageFont

    from unite.metrics.molecules import _quiet_chemistry_logs, check_validity_protocol

    check_validity_protocol(protocol)
    _quiet_chemistry_logs()
    n = min(count, len(types))
    if n == 0:
        raise UserError("no molecules to draw")
    tiles = [molecule_tile(types[i], positions[i], protocol) for i in range(n)]
    size = tiles[0][0].width
    rows = -(-n // cols)
    head = 24
    grid = Image.new("RGB", (cols * size, rows * size + head), (255, 255, 255))
    for i, (tile, _) in enumerate(tiles):
        grid.paste(tile, ((i % cols) * size, head + (i // cols) * size))
    states = [state for _, state in tiles]
    valid = sum(state != "invalid" for state in states)
    connected = states.count("valid")
    text = (f"{title}  " if title else "") + (
        f"{valid}/{n} valid ({protocol} protocol), {connected} of them in one piece. Frame: green "
        "= valid and connected, orange = valid but fragmented, red = invalid. Bonds as OpenBabel "
        "perceives them from the 3D coordinates")
    ImageDraw.Draw(grid).text((6, 6), text, fill=(0, 0, 0), font=ImageFont.load_default())
    _save(grid, out)
    return {"drawn": n, "valid": int(valid), "valid_connected": int(connected)}


# -- crystals -------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def jmol_colours() -> dict:
    """Element -> RGB in [0, 1] from pymatgen's bundled Jmol scheme (no VTK import)."""
    from importlib.resources import files

    import yaml

    scheme = yaml.safe_load(files("pymatgen.vis").joinpath("ElementColorSchemes.yaml").read_text())
    return {el: tuple(c / 255 for c in rgb) for el, rgb in scheme["Jmol"].items()}


def projection() -> np.ndarray:
    """A fixed oblique view (2 x 3 rows of a rotation): c points up the page, a and b are
    turned by 25 degrees and tilted 20 degrees towards the viewer, so that atoms stacked along
    any axis separate."""
    from scipy.spatial.transform import Rotation

    return Rotation.from_euler("zx", [25, -70], degrees=True).as_matrix()[:2]


def draw_cell(ax, types, frac, lengths, angles) -> tuple[bool, str]:
    """One unit cell on a matplotlib axis -> (valid?, title)."""
    from pymatgen.core import Element, Lattice

    from unite.metrics import crystals as C

    structure = C.to_structure(types, frac, lengths, angles)
    sv = C.structure_valid(structure)
    cv = structure is not None and C.composition_valid(C.composition_key(types))
    ax.set_axis_off()
    ax.set_aspect("equal")
    keep = types > 0
    try:
        lattice = Lattice.from_parameters(*map(float, lengths), *map(float, angles)).matrix
    except Exception:
        lattice = None
    if lattice is None or not np.isfinite(lattice).all() or not keep.any():
        ax.text(0.5, 0.5, "no lattice", ha="center", va="center", transform=ax.transAxes)
        return False, "unbuildable"
    view = projection()
    corners = np.array([[(k >> 0) & 1, (k >> 1) & 1, (k >> 2) & 1] for k in range(8)], float)
    corners = corners @ lattice @ view.T
    for a, b in CELL_EDGES:
        ax.plot(*zip(corners[a], corners[b]), color="0.45", lw=0.8, zorder=1)
    cart = (np.mod(frac[keep], 1.0) @ lattice)
    depth = cart @ np.cross(*view)  # draw back to front
    xy = cart @ view.T
    colours = jmol_colours()
    for i in np.argsort(depth):
        symbol = Element.from_Z(int(types[keep][i])).symbol
        radius = 0.2 + 0.2 * min(float(Element(symbol).atomic_radius or 1.0), 2.5)
        ax.add_patch(_circle(xy[i], radius, colours.get(symbol, (0.8, 0.8, 0.8))))
        ax.text(*xy[i], symbol, ha="center", va="center", fontsize=6, zorder=3)
    lo, hi = corners.min(0) - 1.0, corners.max(0) + 1.0
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    formula = structure.composition.reduced_formula if structure is not None else "?"
    state = "valid" if sv and cv else ("invalid: " + ", ".join(
        w for w, ok in (("structure", sv), ("composition", cv)) if not ok))
    return bool(sv and cv), f"{formula}\n{state}"


def _circle(xy, radius, colour):
    from matplotlib.patches import Circle

    return Circle(xy, radius, facecolor=colour, edgecolor="black", lw=0.5, zorder=2)


def crystal_grid(types, frac, lengths, angles, out: str | Path, *, count: int = 16,
                 cols: int = 4, title: str = "") -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = min(count, len(types))
    if n == 0:
        raise UserError("no crystals to draw")
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.9 * rows + 0.4), squeeze=False)
    framed = []
    for k, ax in enumerate(axes.ravel()):
        if k >= n:
            ax.set_axis_off()
            continue
        ok, label = draw_cell(ax, types[k], frac[k], lengths[k], angles[k])
        colour = tuple(c / 255 for c in (VALID_RGB if ok else INVALID_RGB))
        ax.set_title(label, fontsize=8, color=colour)
        framed.append((ax, colour, ok))
    valid = sum(ok for _, _, ok in framed)
    fig.suptitle((f"{title}  " if title else "") + f"{valid}/{n} valid (structure + composition); "
                 "oblique projection of each unit cell (c up)", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.97), h_pad=2.0)
    for ax, colour, _ in framed:  # after the layout, so the frames sit where the axes ended up
        fig.patches.append(_frame(fig, ax, colour))
    _save(fig, out)
    plt.close(fig)
    return {"drawn": n, "valid": int(valid)}


def _frame(fig, ax, colour):
    from matplotlib.patches import Rectangle

    box = ax.get_position()
    return Rectangle((box.x0, box.y0), box.width, box.height, transform=fig.transFigure,
                     fill=False, edgecolor=colour, lw=2)


# -- files and CLI --------------------------------------------------------------------------
def _save(image_or_figure, out: str | Path) -> None:
    from unite.atomic import atomic_write

    with atomic_write(out, "wb") as fh:
        if hasattr(image_or_figure, "savefig"):
            image_or_figure.savefig(fh, format="png", dpi=130)
        else:
            image_or_figure.save(fh, format="PNG")


def load_arrays(path: str | Path, fields: tuple[str, ...]) -> tuple[dict, dict]:
    """A sample file's arrays, or a reconstruction file's ``recon_*`` arrays."""
    from unite.metrics.molecules import load_npz

    arrays, meta = load_npz(path)
    if all(f"recon_{f}" in arrays for f in fields):
        arrays = {f: arrays[f"recon_{f}"] for f in fields}
    missing = [f for f in fields if f not in arrays]
    if missing:
        raise UserError(f"{path} lacks {', '.join(missing)}: not a file of generated structures")
    return arrays, meta


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=("molecules", "crystals"))
    parser.add_argument("--samples", required=True, help="sample or reconstruction .npz")
    parser.add_argument("--out", required=True, help="output PNG")
    parser.add_argument("--count", type=int, default=24, help="structures drawn (the first N)")
    parser.add_argument("--cols", type=int, default=6)
    parser.add_argument("--validity-protocol", default="adit",
                        help="molecules: validity protocol marking the tiles (default adit)")


def run(args: argparse.Namespace) -> None:
    if args.count <= 0 or args.cols <= 0:
        raise UserError("--count and --cols must be > 0")
    if args.what == "molecules":
        arrays, meta = load_arrays(args.samples, ("atom_types", "positions"))
        summary = molecule_grid(arrays["atom_types"], arrays["positions"], args.out,
                                count=args.count, cols=args.cols,
                                protocol=args.validity_protocol,
                                title=str(meta.get("experiment", "")))
    else:
        from unite.metrics.crystals import FIELDS

        arrays, meta = load_arrays(args.samples, FIELDS)
        summary = crystal_grid(*(arrays[f] for f in FIELDS), args.out, count=args.count,
                               cols=args.cols, title=str(meta.get("experiment", "")))
    print(json.dumps({"out": str(args.out), **summary}))
