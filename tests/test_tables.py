"""The tables set the paper's numbers beside ours, say at which scale ours were obtained,
print "not run" for roles nobody ran, "not fine-tuned" for a checkpoint that was not
fine-tuned and "not applicable" for molecules/crystals, which the paper does not fine-tune."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from unite import tables
from unite.errors import UserError
from unite.tables import paper


def metric_file(root, experiment, source, kind, metrics, scale=None, flags=()):
    path = root / "metrics" / experiment / f"{source}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"experiment": experiment, "kind": kind, "metrics": metrics,
              "scale": scale or {}, "flags": list(flags)}
    path.write_text(json.dumps(record))
    return path


DIGITS_SCALE = {"dataset": "digits", "model_size": "tiny", "train_steps": 600,
                "num_samples": 100, "solver": "heun", "steps": 25, "nfe": 50, "fine_tuned": False}


@pytest.fixture
def results(tmp_path):
    root = tmp_path / "results"
    metric_file(root, "digits", "gen_heun-balanced", "gen_images",
                {"fid_digits": 12.3456, "is_digits": 7.5}, DIGITS_SCALE,
                flags=["100 samples, fewer than the paper's 50000"])
    metric_file(root, "digits", "recon_trained", "recon_images",
                {"rfid_digits": 3.25, "psnr": 18.5, "lpips": None},
                {**DIGITS_SCALE, "num_samples": 150})
    metric_file(root, "digits", "recon_finetuned", "recon_images",
                {"rfid_digits": 3.25, "psnr": 18.5}, {**DIGITS_SCALE, "num_samples": 150})
    metric_file(root, "qm9", "recon_trained", "recon_molecules",
                {"match_rate": 0.5, "rmsd": 0.21}, {"dataset": "qm9", "num_samples": 64})
    metric_file(root, "qm9", "gen_heun-balanced", "gen_molecules",
                {"validity": 0.25, "uniqueness": 1.0}, {"dataset": "qm9", "num_samples": 100})
    return root


def by_row(lines):
    return {line.row: line for line in lines}


def test_our_number_sits_beside_the_papers_with_its_scale(results):
    roles = {"unite-b": "digits"}
    rows = by_row(tables.build_table("table1_generation", tables.read_results(results), roles,
                                     "heun-balanced"))
    b = rows["UNITE-B"]
    adm_cols = {"fid_adm": None, "is_adm": None, "precision_adm": None, "recall_adm": None}
    assert b.paper == {"fid": 2.12, "fid_before_ft": 2.12, "is": 294.1, "cfg": None,
                       "best_fid": 2.12, "best_cfg": None, **adm_cols}
    assert b.ours == {"fid": 12.3456, "fid_before_ft": None, "is": 7.5, "cfg": None,
                      "best_fid": None, "best_cfg": None, **adm_cols}
    assert b.experiment == "digits"
    for part in ("digits", "model tiny", "600 steps", "100 samples", "heun", "NFE 50",
                 "not fine-tuned"):
        assert part in b.scale
    # a digits-classifier FID is never passed off as an Inception FID
    assert any("not Inception" in n for n in b.notes)
    assert any("fewer than the paper" in n for n in b.notes)
    assert set(rows["UNITE-L"].ours.values()) == {paper.NOT_RUN}
    assert rows["DiT-XL/2 (SD-VAE)"].scale.startswith("paper baseline")
    # each paper number sits under the protocol it was measured with
    assert rows["DiT-XL/2 (SD-VAE)"].paper["fid_adm"] == 2.27
    assert rows["DiT-XL/2 (SD-VAE)"].paper["fid"] is None
    assert "ADM" in rows["DiT-XL/2 (SD-VAE)"].protocol and "UNITE" in b.protocol


def test_adm_protocol_numbers_fill_their_own_columns(results):
    metric_file(results, "digits", "adm_heun-balanced", "gen_images",
                {"fid_adm": 5.5, "is_adm": 3.0, "precision_adm": 0.5, "recall_adm": 0.25,
                 "sfid_adm": None}, {**DIGITS_SCALE, "fid_protocol": "adm"})
    found = tables.read_results(results)
    b = by_row(tables.build_table("table1_generation", found, {"unite-b": "digits"},
                                  "heun-balanced"))["UNITE-B"]
    assert (b.ours["fid"], b.ours["fid_adm"], b.ours["is_adm"]) == (12.3456, 5.5, 3.0)
    assert (b.ours["precision_adm"], b.ours["recall_adm"]) == (0.5, 0.25)
    assert "ADM protocol:" in b.scale
    t4 = by_row(tables.build_table("table4_protocol", found, {"unite-b": "digits"},
                                   "heun-balanced"))
    assert t4["Heun, 50 steps, balanced classes"].ours["fid_adm"] == 5.5


def test_rows_carry_provenance_and_the_provenance_table_lists_every_field(results, tmp_path):
    prov = {"checkpoint": "results/finetuned/digits/finetuned.pt", "checkpoint_sha256": "ab" * 32,
            "train_step": 900, "config_hash": "cd" * 32, "git_commit": "ef" * 20,
            "git_dirty": False, "reference_sha256": "12" * 32, "feature_weights_sha256": "34" * 32,
            "toolchain": {"rdkit": "1"}, "missing": []}
    path = results / "metrics/digits/gen_heun-balanced.json"
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "provenance": prov}))
    found = tables.read_results(results)
    b = by_row(tables.build_table("table1_generation", found, {"unite-b": "digits"},
                                  "heun-balanced"))["UNITE-B"]
    assert b.provenance == ("gen_heun-balanced: ckpt ababababab@900, config cdcdcdcdcd, "
                            "code efefefefef, ref 1212121212, features 3434343434")
    out = tmp_path / "t"
    tables.write_tables(results, out, {"unite-b": "digits"}, "heun-balanced")
    with open(out / "provenance.csv") as fh:
        rows = {(r["experiment"], r["source"]): r for r in csv.DictReader(fh)}
    full = rows[("digits", "gen_heun-balanced")]
    assert full["checkpoint_sha256"] == "ab" * 32 and full["train_step"] == "900"
    assert json.loads(full["toolchain"]) == {"rdkit": "1"}
    assert rows[("qm9", "gen_heun-balanced")]["checkpoint_sha256"] == "-"  # none recorded
    html = (out / "table1_generation.html").read_text()
    assert "Provenance of ours" in html and "ckpt ababababab@900" in html


def test_a_role_run_with_several_seeds_shows_mean_and_spread(results):
    for exp, fid in (("digits-separate-s0", 10.0), ("digits-separate-s1", 14.0)):
        metric_file(results, exp, "gen_heun-balanced", "gen_images", {"fid_digits": fid},
                    DIGITS_SCALE)
        metric_file(results, exp, "recon_trained", "recon_images", {"rfid_digits": 3.0},
                    DIGITS_SCALE)
    roles = tables.parse_roles(["unite-b-separate=digits-separate-s0",
                                "unite-b-separate=digits-separate-s1",
                                "unite-b-separate=digits-separate-s2"])  # s2 never ran
    assert roles == {"unite-b-separate": ["digits-separate-s0", "digits-separate-s1",
                                          "digits-separate-s2"]}
    rows = by_row(tables.build_table("table6_ablations", tables.read_results(results), roles,
                                     "heun-balanced"))
    line = rows["separate weights, stop-gradient"]
    assert line.ours["fid"] == "12.00 ± 2.828 (n=2)"  # sd with ddof 1
    assert line.ours["rfid"] == "3 ± 0 (n=2)"
    assert line.experiment.startswith("2 runs:")
    assert "mean ± sd over 2 runs" in line.scale


def test_the_gfid_is_the_full_run_at_the_sweeps_w_and_says_how_w_was_picked(results):
    metric_file(results, "digits", "cfg_sweep", "cfg_sweep",
                {"best_cfg": 2.0, "best_fid": 9.5, "fid_key": "fid_digits", "points": []},
                {**DIGITS_SCALE, "solver": "heun"})
    gen = json.loads((results / "metrics/digits/gen_heun-balanced.json").read_text())
    gen["scale"] |= {"cfg": 2.0, "cfg_source": "sweep",
                     "cfg_selection": "w = 2: lowest fid_digits of a sweep over w = 1-4"}
    (results / "metrics/digits/gen_heun-balanced.json").write_text(json.dumps(gen))
    rows = by_row(tables.build_table("table1_generation", tables.read_results(results),
                                     {"unite-b": "digits"}, "heun-balanced"))
    b = rows["UNITE-B"]
    assert (b.ours["fid"], b.ours["cfg"], b.ours["best_fid"], b.ours["best_cfg"]) == (
        12.3456, 2.0, 9.5, 2.0)
    assert "w = 2: lowest fid_digits of a sweep over w = 1-4" in b.notes
    assert "generation:" in b.scale and "cfg_sweep:" in b.scale


def test_an_unguided_row_says_so_beside_the_papers_guided_value(results):
    gen = json.loads((results / "metrics/digits/gen_heun-balanced.json").read_text())
    gen["scale"]["cfg"] = 1.0  # a sample file from before the choice was recorded
    (results / "metrics/digits/gen_heun-balanced.json").write_text(json.dumps(gen))
    found = tables.read_results(results)
    t1 = by_row(tables.build_table("table1_generation", found, {"unite-b": "digits"},
                                   "heun-balanced"))
    assert t1["UNITE-B"].ours["cfg"] == 1.0
    assert any(n.startswith("unguided (w = 1): the paper's value is at its best w")
               for n in t1["UNITE-B"].notes)
    t4 = by_row(tables.build_table("table4_protocol", found, {"unite-b": "digits"},
                                   "heun-balanced"))
    # Table 4's paper rows do not claim a best w: no "not like for like" there
    assert "unguided (w = 1)" in t4["Heun, 50 steps, balanced classes"].notes


def test_table6_and_table2_default_rows_are_one_run(results):
    """Recon noise s_min 0.7, shift 0.5, shared + stop-gradient and Table 2's UNITE-B: the
    same 120-epoch experiment, as in the paper's Table 6."""
    t6 = tables.PAPER["table6_ablations"]["rows"]
    default_rows = [r["role"] for r in t6 if "(default)" in r["row"] or "(UNITE" in r["row"]]
    t2 = {r["row"]: r.get("role") for r in tables.PAPER["table2_reconstruction"]["rows"]}
    assert len(default_rows) == 3 and set(default_rows) == {t2["UNITE-B"]} == {"unite-b-120ep"}
    roles = {r.get("role") for t in tables.PAPER.values() for r in t["rows"]}
    assert "unite-b-noise0.7" not in roles  # the paper's sigma = 0.7 row is the base run
    rows = by_row(tables.build_table("table6_ablations", tables.read_results(results),
                                     {"unite-b-120ep": "digits"}, "heun-balanced"))
    filled = [r for r, ln in rows.items() if ln.experiment == "digits"]
    assert len(filled) == 3 and all(rows[r].ours["fid"] == 12.3456 for r in filled)


def test_rows_from_runs_of_another_length_are_marked_not_like_for_like(results):
    metric_file(results, "long", "gen_heun-balanced", "gen_images", {"fid_digits": 5.0},
                {**DIGITS_SCALE, "train_steps": 1200})
    metric_file(results, "long", "recon_trained", "recon_images", {"rfid_digits": 2.0},
                {**DIGITS_SCALE, "train_steps": 1200})
    roles = {"unite-b-120ep": "digits", "unite-b-shift0.75": "long"}
    found = tables.read_results(results)
    rows = by_row(tables.build_table("table6_ablations", found, roles, "heun-balanced"))
    shifted = rows["time shift a = 0.75"]
    assert shifted.ours["fid"] == 5.0
    assert shifted.notes[0] == (f"{paper.NOT_LIKE_FOR_LIKE}: trained 1200 steps, the "
                                "unite-b-120ep row 600")
    assert not any(paper.NOT_LIKE_FOR_LIKE in n for n in rows["time shift a = 0.5 (default)"].notes)
    md = tables.to_markdown("table6_ablations", list(rows.values()))
    assert md.splitlines()[2].startswith(f"**Warning: {paper.NOT_LIKE_FOR_LIKE}.**")
    assert "time shift a = 0.75" in md.splitlines()[2]


def test_a_checkpoint_that_was_not_fine_tuned_reads_not_fine_tuned(results):
    found = tables.read_results(results)
    rows = by_row(tables.build_table("table2_reconstruction", found,
                                     {"unite-b-120ep": "digits"}, "heun-balanced"))
    assert rows["UNITE-B"].ours["rfid"] == 3.25
    assert rows["UNITE-B + GAN decoder fine-tuning"].ours["rfid"] == paper.NOT_FINE_TUNED

    really = json.loads((results / "metrics/digits/recon_finetuned.json").read_text())
    really["scale"]["fine_tuned"] = True
    (results / "metrics/digits/recon_finetuned.json").write_text(json.dumps(really))
    rows = by_row(tables.build_table("table2_reconstruction", tables.read_results(results),
                                     {"unite-b-120ep": "digits"}, "heun-balanced"))
    assert rows["UNITE-B + GAN decoder fine-tuning"].ours["rfid"] == 3.25


FT_SCALE = {**DIGITS_SCALE, "fine_tuned": True, "finetune_steps": 120, "finetune_epochs": 5.13,
            "finetune_loss": "hinge, adaptive weight x0.5"}


def test_fine_tuned_results_fill_table2_and_table1_before_and_after(results):
    metric_file(results, "digits", "recon_finetuned", "recon_images",
                {"rfid_digits": 2.5, "psnr": 19.0}, {**FT_SCALE, "num_samples": 150})
    metric_file(results, "digits", "gen_heun-balanced", "gen_images",
                {"fid_digits": 11.0, "is_digits": 7.6}, FT_SCALE)
    metric_file(results, "digits", "gen_heun-balanced_trained_decoder", "gen_images",
                {"fid_digits": 12.0, "is_digits": 7.4}, DIGITS_SCALE)
    found = tables.read_results(results)
    t2 = by_row(tables.build_table("table2_reconstruction", found,
                                   {"unite-b-120ep": "digits"}, "heun-balanced"))
    ft = t2["UNITE-B + GAN decoder fine-tuning"]
    assert (ft.ours["rfid"], ft.ours["psnr"]) == (2.5, 19.0)
    assert "GAN-fine-tuned decoder (120 steps, 5.13 epochs, hinge, adaptive weight x0.5)" \
        in ft.scale
    assert t2["UNITE-B"].ours["rfid"] == 3.25 and "not fine-tuned" in t2["UNITE-B"].scale
    t1 = by_row(tables.build_table("table1_generation", found, {"unite-b": "digits"},
                                   "heun-balanced"))["UNITE-B"]
    assert (t1.ours["fid"], t1.ours["fid_before_ft"]) == (11.0, 12.0)
    assert "GAN-fine-tuned decoder" in t1.scale


def test_molecules_say_fine_tuning_is_not_applicable(results):
    metric_file(results, "qm9", "recon_trained", "recon_molecules",
                {"match_rate": 0.5, "rmsd": 0.21},
                {"dataset": "qm9", "num_samples": 64, "fine_tuned": False,
                 "finetune": "not applicable"})
    rows = by_row(tables.build_table("table3_qm9", tables.read_results(results),
                                     {"unite-s-qm9": "qm9"}, "heun-balanced"))
    assert paper.FT_NOT_APPLICABLE in rows["UNITE-S"].scale
    assert paper.NOT_FINE_TUNED not in rows["UNITE-S"].scale


def test_rates_are_printed_in_percent_like_the_paper(results):
    rows = by_row(tables.build_table("table3_qm9", tables.read_results(results),
                                     {"unite-s-qm9": "qm9"}, "heun-balanced"))
    s = rows["UNITE-S"]
    assert s.ours == {"match_rate": 50.0, "rmsd": 0.21, "validity": 25.0, "uniqueness": 100.0,
                      "validity_connected": None}
    assert s.paper["match_rate"] == 99.37


def test_every_table_is_written_in_three_formats(results, tmp_path):
    out = tmp_path / "tables"
    written = tables.write_tables(results, out, {"unite-b": "digits"}, "heun-balanced")
    assert sorted(p.name for p in written) == sorted(
        f"{stem}.{fmt}" for stem in tables.ALL_STEMS for fmt in tables.TABLE_FORMATS)
    assert len(tables.TABLE_STEMS) == 6
    md = (out / "table1_generation.md").read_text()
    assert "| UNITE-B | digits | UNITE (torch-fidelity, ImageNet-train stats) | 2.12 | 12.35 |" in md
    with open(out / "table1_generation.csv") as fh:
        rows = list(csv.reader(fh))
    assert rows[0][:5] == ["Row", "Ours from", "Paper's protocol", "gFID (UNITE protocol) paper",
                           "gFID (UNITE protocol) ours"]
    assert rows[1][:2] + rows[1][3:5] == ["UNITE-B", "digits", "2.12", "12.35"]
    tex = (out / "table6_ablations.tex").read_text()
    assert r"\begin{tabular}" in tex and "not run" in tex
    # every paper row of Table 6 that nobody ran says so
    assert (out / "table6_ablations.md").read_text().count("not run") >= 4 * 11


def test_unknown_role_is_a_user_error():
    with pytest.raises(UserError, match="unknown role"):
        tables.parse_roles(["unite-q=digits"])
    with pytest.raises(UserError, match="ROLE=EXPERIMENT"):
        tables.parse_roles(["unite-b"])


def test_cli_writes_tables_and_reports_mistakes_in_one_line(results, tmp_path):
    out = tmp_path / "t"
    ok = subprocess.run([sys.executable, "-m", "unite", "tables", "--results", str(results),
                         "--out", str(out), "--role", "unite-b=digits"],
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert (out / "table4_protocol.md").is_file()
    bad = subprocess.run([sys.executable, "-m", "unite", "tables", "--results",
                          str(tmp_path / "missing"), "--out", str(out)],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: --results") and "Traceback" not in bad.stderr


def test_the_sweep_table_lists_fid_per_scale_and_marks_the_best(results, tmp_path):
    points = [{"cfg": w, "nfe": 50, "fid_digits": fid, "is_digits": 5.0,
               "class_accuracy_digits": 0.9, "num_samples": 100}
              for w, fid in ((1.0, 20.0), (2.0, 15.5), (3.0, 17.0))]
    metric_file(results, "digits", "cfg_sweep", "cfg_sweep",
                {"best_cfg": 2.0, "best_fid": 15.5, "fid_key": "fid_digits", "is_key": "is_digits",
                 "points": points, "stop_rule": "full sweep: every scale evaluated"},
                {**DIGITS_SCALE, "solver": "heun"})
    out = tmp_path / "tables"
    tables.write_tables(results, out, {"unite-b": "digits"}, "heun-balanced")
    md = (out / "cfg_sweep.md").read_text()
    rows = [line for line in md.splitlines() if line.startswith("| digits")]
    assert [r.split(" | ")[2] for r in rows] == ["20.00", "15.50", "17.00"]
    assert "**best**" in rows[1] and "**best**" not in rows[0] + rows[2]
    assert "not Inception" in md
    assert (out / "cfg_sweep.csv").read_text().count("\n") == 4


def test_without_a_sweep_the_sweep_table_says_not_run(tmp_path):
    out, empty = tmp_path / "tables", tmp_path / "empty"
    empty.mkdir()
    tables.write_tables(empty, out, {}, "heun-balanced")
    assert paper.NOT_RUN in (out / "cfg_sweep.md").read_text()
