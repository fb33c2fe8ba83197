"""The data kinds: one row per value of ``data.kind``, read by everything that dispatches on it.

Readers: the config check (``config.CHOICES["data.kind"]`` and the image-only checks), the
dataset factory (``unite.data.build_dataset``), ``unite prepare`` (``unite.data.prepare``),
the model registry (image or atom input embedding and decoder), ``unite.modality`` and the
workflow (``workflow/rules/common/``: the prepared file's suffix, which metrics a dataset
gets). Standard library only: ``config.py`` and the workflow import it without torch.

Adding a dataset kind = one row of :data:`DATA_KINDS` + one dataset module (the ``Dataset``
class the row names, constructed as ``Class(cfg, split)``, and, when the raw data needs
converting, ``prepare(cfg, out_path) -> dict`` writing the file of suffix ``prepared``).
"""

from __future__ import annotations

from dataclasses import dataclass

# What a dataset is made of; decides the model's input embedding and decoder ("images": patch
# embedding + image decoder; the others: the atom modules), the reconstruction loss and the
# `unite evaluate` subcommand (and so the metrics) its samples get.
MODALITIES = ("images", "molecules", "crystals")


@dataclass(frozen=True)
class DataKind:
    name: str  # the value of data.kind
    modality: str  # one of MODALITIES
    module: str  # the dataset module: the Dataset class and prepare()
    dataset: str  # the Dataset class in `module`, built as Class(cfg, split)
    prepared: str  # suffix of the file `unite prepare` writes (the workflow's data artefact)
    # image kinds only: the FID feature network `unite metrics ref-stats` uses when none is
    # named (unite.metrics.features), and how reference images are made ({size}: data.image_size)
    features: str | None = None
    reference_preprocess: str | None = None
    # the data.* keys the module's prepare() reads: the workflow reruns preparation (and what
    # reads the prepared file) when one of them changes in the dataset's library config
    prepare_reads: tuple[str, ...] = ()


DATA_KINDS: dict[str, DataKind] = {
    k.name: k
    for k in (
        DataKind("digits", "images", "unite.data.digits", "DigitsDataset", "npz",
                 features="digits",  # prepare() writes a fixed split: it reads no setting
                 reference_preprocess="8x8 scans, bilinear upsampling to {size}x{size}, no flip"),
        DataKind("imagefolder", "images", "unite.data.images", "ImageFolderDataset", "json",
                 features="inception",
                 reference_preprocess="ADM center crop to {size}x{size}, no flip",
                 prepare_reads=("root",)),
        DataKind("qm9", "molecules", "unite.data.qm9", "QM9Dataset", "npz",
                 prepare_reads=("max_atoms", "seed")),
        DataKind("crystals", "crystals", "unite.data.crystals", "CrystalDataset", "npz",
                 prepare_reads=("root", "max_atoms", "seed", "on_corrupt")),
    )
}
NAMES: tuple[str, ...] = tuple(DATA_KINDS)


def get(kind: str) -> DataKind:
    """The row of ``kind``; an unknown kind is a ValueError (configs are checked earlier)."""
    try:
        return DATA_KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown data kind {kind!r}; known: {', '.join(NAMES)}") from None


def prepare_settings(data) -> str:
    """``key=value`` of the settings ``prepare()`` reads, from a config's ``data`` section
    (the workflow's rerun trigger for preparation)."""
    return " ".join(f"{k}={getattr(data, k)!r}" for k in get(data.kind).prepare_reads)


def modality(kind: str) -> str:
    return get(kind).modality


def is_images(kind: str) -> bool:
    """True for image kinds; False for atom kinds and for unknown names."""
    row = DATA_KINDS.get(kind)
    return row is not None and row.modality == "images"


def is_atoms(kind: str) -> bool:
    """True for molecule and crystal kinds; False for image kinds and for unknown names."""
    row = DATA_KINDS.get(kind)
    return row is not None and row.modality != "images"
