"""`analyze curves` reads a live run's metrics.jsonl leniently (gaps, a truncated line, steps
logged again after a resume) and reports the final value of every field."""

import json

import pytest

from unite.analysis.curves import read_metrics, series
from unite.cli import main

LINES = [
    {"kind": "train", "step": 10, "loss": 3.0, "recon": 2.0, "l1": 1.2, "lpips": 0.8, "flow": 1.0, "lr": 1e-5},
    {"kind": "train", "step": 20, "loss": 2.5, "recon": 1.6, "l1": 1.0, "lpips": 0.6, "flow": 0.9, "lr": 2e-5},
    {"kind": "eval", "step": 20, "val_psnr": 14.0, "val_l1": 0.5},
    {"kind": "train", "step": 30, "loss": 2.4, "recon": 1.4, "flow": 1.0, "lr": 3e-5},  # no l1/lpips
    {"kind": "train", "step": 30, "loss": 2.2, "recon": 1.3, "flow": 0.9, "lr": 3e-5},  # resumed
    {"kind": "eval", "step": 40, "val_psnr": 16.5, "val_l1": float("nan")},
]


def _write(path, lines, tail=""):
    text = "".join(json.dumps(rec) + "\n" for rec in lines)
    path.write_text(text + "\n" + '{"note": "no step"}\n' + tail)


def test_read_metrics_merges_records_and_flags_problems(tmp_path):
    path = tmp_path / "metrics.jsonl"
    _write(path, LINES, tail='{"kind": "train", "step": 50, "loss": 2.')  # killed mid-write
    records, flags = read_metrics(path)
    assert list(records) == [10, 20, 30, 40]
    assert records[20] == {"loss": 2.5, "recon": 1.6, "l1": 1.0, "lpips": 0.6, "flow": 0.9,
                           "lr": 2e-5, "val_psnr": 14.0, "val_l1": 0.5}
    assert records[30]["recon"] == 1.3  # the later (resumed) record wins
    assert "val_l1" not in records[40]  # NaN is not a value
    assert any("malformed" in f for f in flags)
    assert any("without a numeric 'step'" in f for f in flags)
    assert any("logged twice" in f for f in flags)
    curves = series(records)
    assert curves["l1"] == ([10, 20], [1.2, 1.0])
    assert curves["val_psnr"] == ([20, 40], [14.0, 16.5])


def test_analyze_curves_writes_summary_and_figure(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("name: digits-b\ndata: {kind: digits}\nmodel: {size: tiny}\n")
    _write(run / "metrics.jsonl", LINES)
    out, png = tmp_path / "curves.json", tmp_path / "curves.png"
    main(["analyze", "curves", "--metrics", str(run / "metrics.jsonl"), "--out", str(out),
          "--png", str(png), "--smooth", "0.5"])
    res = json.loads(out.read_text())
    assert res["kind"] == "curves" and res["experiment"] == "digits-b"
    assert res["scale"]["train_steps"] == 40 and res["scale"]["dataset"] == "digits"
    final = res["metrics"]["final"]
    assert final["recon"]["final"] == 1.3 and final["recon"]["final_step"] == 30
    assert final["recon"]["min"] == 1.3 and final["recon"]["max"] == 2.0
    assert final["val_psnr"]["final"] == 16.5
    assert png.stat().st_size > 10_000


def test_curves_record_names_the_run_as_given_not_its_absolute_path(tmp_path, monkeypatch):
    # two identical runs in two clones must write identical results files
    monkeypatch.chdir(tmp_path)
    (tmp_path / "run").mkdir()
    _write(tmp_path / "run" / "metrics.jsonl", LINES)
    main(["analyze", "curves", "--metrics", "run/metrics.jsonl", "--out", "curves.json"])
    res = json.loads((tmp_path / "curves.json").read_text())
    assert res["scale"]["run"] == "run" and res["experiment"] == "run"


def test_analyze_curves_without_the_file_is_a_user_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["analyze", "curves", "--metrics", str(tmp_path / "nope.jsonl"),
              "--out", str(tmp_path / "c.json")])
    assert exc.value.code == 2
    assert "metrics file not found" in capsys.readouterr().err
