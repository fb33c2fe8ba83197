"""The table of data kinds is the one list: every reader agrees with it, every row resolves."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from unite import config, kinds, modality
from unite.errors import UserError


@pytest.mark.parametrize("row", kinds.DATA_KINDS.values(), ids=kinds.NAMES)
def test_every_row_names_a_dataset_class_and_a_prepare_step(row):
    module = importlib.import_module(row.module)
    assert isinstance(getattr(module, row.dataset), type)
    assert callable(module.prepare)
    assert row.modality in kinds.MODALITIES
    assert row.prepared in ("npz", "json")


def test_config_choices_and_modality_read_the_table():
    assert config.CHOICES["data.kind"] == kinds.NAMES
    with pytest.raises(UserError, match="data.kind"):
        config.from_dict({"data": {"kind": "cifar"}})
    for name, row in kinds.DATA_KINDS.items():
        cfg = config.Config()
        cfg.data.kind = name
        assert modality.is_image(cfg) == (row.modality == "images") != modality.is_atoms(cfg)


def test_unknown_kind():
    with pytest.raises(ValueError, match="unknown data kind 'cifar'"):
        kinds.get("cifar")
    assert not kinds.is_images("cifar") and not kinds.is_atoms("cifar")


def test_table_imports_without_torch():
    """config.py and the workflow's common/config.smk import it: it must not pull torch in."""
    code = "import sys, unite.kinds, unite.config; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("row", kinds.DATA_KINDS.values(), ids=lambda r: r.name)
def test_image_rows_name_their_fid_features_and_reference_preprocessing(row):
    """ref-stats and the reference metadata read these fields instead of testing names."""
    from unite.metrics import features
    from unite.metrics.image_sets import describe_preprocess

    if row.modality != "images":
        assert row.features is None and row.reference_preprocess is None
        return
    assert row.features in features.FEATURE_KINDS
    cfg = config.from_dict({}, [f"data.kind={row.name}", "data.image_size=32"])
    assert "32x32" in describe_preprocess(cfg)


def _data_keys_read_by_prepare(module_name: str) -> set[str]:
    """``cfg.data.<key>`` read by the module's prepare() and the module functions it calls."""
    import ast

    source = importlib.util.find_spec(module_name).origin
    tree = ast.parse(open(source).read())
    funcs = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}
    keys, seen, todo = set(), set(), ["prepare"]
    while todo:
        name = todo.pop()
        if name in seen or name not in funcs:
            continue
        seen.add(name)
        for node in ast.walk(funcs[name]):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
                    and node.value.attr == "data" and isinstance(node.value.value, ast.Name)
                    and node.value.value.id == "cfg"):
                keys.add(node.attr)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                todo.append(node.func.id)
    return keys


@pytest.mark.parametrize("row", kinds.DATA_KINDS.values(), ids=lambda r: r.name)
def test_prepare_reads_lists_exactly_the_settings_prepare_reads(row):
    """The workflow reruns preparation when one of these changes: a key missing here would
    leave a stale prepared file after an edit of the library config."""
    assert _data_keys_read_by_prepare(row.module) == set(row.prepare_reads)
    cfg = config.from_dict({}, [f"data.kind={row.name}"] + (
        [] if row.modality == "images" else ["model.size=tiny"]))
    text = kinds.prepare_settings(cfg.data)
    assert all(f"{k}=" in text for k in row.prepare_reads)
