"""The paper's Tables 1-6 as data (:data:`PAPER`, REFERENCE section 5) and the vocabulary the
tables share: output formats, stems, cell texts, metric-key suffixes, scale fields."""

from __future__ import annotations

TABLE_FORMATS = ("md", "csv", "tex", "html")  # html: shown inside the Snakemake report
NOT_RUN = "not run"
NOT_FINE_TUNED = "not fine-tuned"
FT_NOT_APPLICABLE = "fine-tuning not applicable"
TRAINED_DECODER = "_trained_decoder"  # suffix of the source decoded with the pre-FT decoder
PRIMARY = "primary"  # a row's source "gen_primary" means the --primary sampling protocol
INPUT_MARK = " (!)"  # after our number when such a flag exists
DEFAULT_120EP = "unite-b-120ep"  # Table 2's UNITE-B and every Table 6 default row: one run
NOT_LIKE_FOR_LIKE = "NOT LIKE FOR LIKE"

# The paper's numbers (arXiv 2603.22283; REFERENCE section 5). Per table: a title, the metric
# columns (key in our metric files -> header), and rows: label, role (None = a baseline we do
# not run), the metric file it reads ("source"), the paper's values; `needs_finetune` rows
# only count a checkpoint that was really fine-tuned. Table flags: `guided_paper` (the paper's
# gFIDs are at its best CFG w: an unguided row of ours says it is not like for like),
# `same_length` (every row must come from runs trained for as many steps as the row of
# `reference_role`, else the row is marked NOT LIKE FOR LIKE and the table warns).
PAPER: dict = {
    "table1_generation": {
        "title": "Table 1: ImageNet 256x256 class-conditional generation (gFID lower is better)",
        "columns": {"fid": "gFID (UNITE protocol)",
                    "fid_before_ft": "gFID before decoder FT (UNITE protocol)",
                    "is": "IS (UNITE protocol)",
                    "cfg": "CFG w of our gFID",
                    "best_fid": "gFID at best CFG (sweep, fewer samples)",
                    "best_cfg": "best CFG w",
                    "fid_adm": "gFID (ADM protocol)", "is_adm": "IS (ADM protocol)",
                    "precision_adm": "Precision (ADM)", "recall_adm": "Recall (ADM)"},
        "source": ["gen_primary", "cfg_sweep", "adm_primary"],
        # column -> (metric file, metric key): the same latents through the pre-FT decoder
        "column_sources": {"fid_before_ft": ("gen_primary" + TRAINED_DECODER, "fid")},
        "guided_paper": True,
        "rows": [
            {"row": "UNITE-B", "role": "unite-b", "protocol": "unite",
             "paper": {"fid": 2.12, "fid_before_ft": 2.12, "is": 294.1, "best_fid": 2.12}},
            {"row": "UNITE-L", "role": "unite-l", "protocol": "unite",
             "paper": {"fid": 1.73, "fid_before_ft": 1.73, "is": 296.0, "best_fid": 1.73}},
            {"row": "UNITE-XL", "role": "unite-xl", "protocol": "unite",
             "paper": {"fid": 1.75, "fid_before_ft": 1.75, "is": 309.9, "best_fid": 1.75}},
            {"row": "JiT-B/16 (single-stage baseline)", "protocol": "jit",
             "paper": {"fid": 3.66, "is": 275.1}},
            {"row": "DiT-XL/2 (SD-VAE)", "protocol": "adm",
             "paper": {"fid_adm": 2.27, "is_adm": 278.2}},
            {"row": "SiT-XL/2 (SD-VAE)", "protocol": "adm",
             "paper": {"fid_adm": 2.06, "is_adm": 277.5}},
            {"row": "REPA-B (SD-VAE, DINOv2)", "protocol": "adm",
             "paper": {"fid_adm": 2.15, "is_adm": 268.3}},
        ],
        "note": "Each paper number sits under the protocol it was measured with. UNITE "
        "protocol: torch-fidelity InceptionV3 (inception-v3-compat) against reference "
        "statistics of the ImageNet train set, 50K class-balanced dopri5 samples, best CFG of a "
        "1.0-4.0 sweep (the paper's gFID is that best value). ADM protocol (DiT, SiT, REPA): "
        "ADM's evaluator against VIRTUAL_imagenet256_labeled.npz; ours reads that file's "
        "mu/sigma directly and extracts our samples' features with torch-fidelity's port of the "
        "same Inception graph (sFID not computed). JiT's number is from its own evaluation "
        "(torch-fidelity against JiT's ImageNet statistics, which the UNITE authors' code "
        "reuses). Ours: the primary sampling protocol's full sample set at the w of the 'CFG w' "
        "column: where the experiment ran the guidance sweep, the sweep's best w (picked on "
        "fewer samples per scale, 'gFID at best CFG'), and the notes say how it was picked; "
        "without a sweep the row is unguided and says so. From the GAN-fine-tuned "
        "decoder where the scale says so; 'before decoder FT' decodes the same latents with the "
        "trained decoder (the paper: no adversarial loss in Table 1, and decoder fine-tuning "
        "leaves gFID unchanged, App. A, so its value stands in both gFID columns). The "
        "best-CFG columns come from the guidance sweep where one was run.",
    },
    "table2_reconstruction": {
        "title": "Table 2: ImageNet 256x256 reconstruction (rFID lower is better; UNITE rows "
        "at 120 epochs)",
        "columns": {"rfid": "rFID", "psnr": "PSNR", "lpips": "LPIPS"},
        "same_length": True,
        "reference_role": DEFAULT_120EP,
        "rows": [
            {"row": "UNITE-B", "role": "unite-b-120ep", "source": "recon_trained",
             "paper": {"rfid": 1.01}},
            {"row": "UNITE-B + GAN decoder fine-tuning", "role": "unite-b-120ep",
             "source": "recon_finetuned", "needs_finetune": True, "paper": {"rfid": 0.51}},
            {"row": "UNITE-B, separate weights", "role": "unite-b-separate",
             "source": "recon_trained", "paper": {"rfid": 1.38}},
            {"row": "ViTok-B/16 (no adversarial loss)", "paper": {"rfid": 1.63}},
            {"row": "SD-VAE (adversarial loss)", "paper": {"rfid": 0.62}},
        ],
        "note": "Paper: 50K ImageNet val images, center-cropped; GAN fine-tuning trains the "
        "decoder only, 16 epochs, GE frozen, discriminator initialised from the GE. Ours: "
        "the same reconstruction set before and after fine-tuning; the scale says the "
        "fine-tuning budget and loss.",
    },
    "table3_qm9": {
        "title": "Table 3: QM9 molecules: reconstruction (match, RMSD) and generation (valid, "
        "unique)",
        "columns": {"match_rate": "Match %", "rmsd": "RMSD (A)", "validity": "Valid %",
                    "uniqueness": "Unique %", "validity_connected": "Valid & connected %"},
        "rows": [
            {"row": "UNITE-S", "role": "unite-s-qm9", "source": ["recon_trained", "gen_primary"],
             "paper": {"match_rate": 99.37, "rmsd": 0.039, "validity": 94.90,
                       "uniqueness": 99.71}},
            {"row": "ADiT tokenizer", "paper": {"match_rate": 97.20, "rmsd": 0.075}},
            {"row": "ADiT-S, QM9 only", "paper": {"validity": 96.02, "uniqueness": 97.76}},
            {"row": "GeoLDM", "paper": {"validity": 93.8, "uniqueness": 92.9}},
            {"row": "EDM", "paper": {"validity": 91.9, "uniqueness": 90.7}},
        ],
        "note": "Paper (ADiT's protocol): 10,000 generated molecules; validity = pymatgen "
        "writes PDB with OpenBabel's bonds, RDKit parses it with removeHs=False and sanitises, "
        "and the SMILES of the molecule and of its largest fragment can be written; uniqueness "
        "over valid largest-fragment SMILES. Ours use the same recipe unless the scale column "
        "names another validity protocol. 'Valid & connected' (ours only) also asks for a "
        "single fragment.",
    },
    "table4_protocol": {
        "title": "Table 4: evaluation protocol, same UNITE-B checkpoint (240 epochs)",
        "columns": {"fid": "gFID (UNITE protocol)", "is": "IS", "nfe": "NFE", "cfg": "CFG w",
                    "fid_adm": "gFID (ADM protocol)"},
        "same_length": True,
        "rows": [
            {"row": "Heun, 50 steps, balanced classes", "role": "unite-b", "protocol": "unite",
             "source": ["gen_heun-balanced", "adm_heun-balanced"],
             "paper": {"fid": 2.789, "is": 287.6, "nfe": 100}},
            {"row": "dopri5 (adaptive), balanced classes", "role": "unite-b", "protocol": "unite",
             "source": ["gen_dopri5-balanced", "adm_dopri5-balanced"],
             "paper": {"fid": 2.735, "is": 268.1, "nfe": 108}},
            {"row": "dopri5 (adaptive), random classes", "role": "unite-b", "protocol": "unite",
             "source": ["gen_dopri5-random", "adm_dopri5-random"],
             "paper": {"fid": 2.885, "is": 274.7, "nfe": 108}},
        ],
        "note": "Paper: dopri5 needs about 108 NFE per sample (estimated from wall-clock); it "
        "does not say at which w these rows were sampled (its dopri5-balanced 2.735 is not "
        "Table 1's 2.12 for the same checkpoint). Ours: every row at the same w (the CFG w "
        "column; the sweep's best where the experiment ran one).",
    },
    "table5_mp20": {
        "title": "Table 5: MP20 crystals, 10K generated samples (validity %) and tokenizer "
        "match rate",
        "columns": {"struct_validity": "Struct. %", "comp_validity": "Comp. %",
                    "validity": "Overall %", "match_rate": "Match %"},
        "rows": [
            {"row": "UNITE-S (single-stage)", "role": "unite-s-mp20",
             "source": ["gen_primary", "recon_trained"],
             "paper": {"struct_validity": 99.0, "comp_validity": 89.9, "validity": 87.9,
                       "match_rate": 75.7}},
            {"row": "ADiT tokenizer", "paper": {"match_rate": 84.50}},
            {"row": "ADiT MP20-only, DiT-B (two-stage)",
             "paper": {"struct_validity": 99.6, "comp_validity": 90.5, "validity": 90.1}},
            {"row": "ADiT joint, DiT-B (two-stage)",
             "paper": {"struct_validity": 99.7, "comp_validity": 92.1, "validity": 91.9}},
        ],
        "note": "Paper: StructureMatcher(stol=0.5, ltol=0.3, angle_tol=10); structural "
        "validity = all distances > 0.5 A and volume > 0.1 A^3; compositional = SMACT.",
    },
    "table6_ablations": {
        "title": "Table 6 and Sec. 4: ablations on ImageNet 256 (UNITE-B, 120 epochs)",
        "columns": {"fid": "gFID", "rfid": "rFID", "is": "IS", "cfg": "CFG w"},
        "guided_paper": True,
        "same_length": True,
        "reference_role": DEFAULT_120EP,
        "rows": [
            {"row": "recon noise s_min 0.0 (full noise range)", "role": "unite-b-noise0.0",
             "paper": {"fid": 2.87, "rfid": 1.09, "is": 281.1}},
            {"row": "recon noise s_min 0.6", "role": "unite-b-noise0.6",
             "paper": {"fid": 2.80, "rfid": 1.21, "is": 267.1}},
            {"row": "recon noise s_min 0.7 (default)", "role": DEFAULT_120EP,
             "paper": {"fid": 2.71, "rfid": 1.01, "is": 282.2}},
            {"row": "recon noise s_min 0.8", "role": "unite-b-noise0.8",
             "paper": {"fid": 2.87, "rfid": 1.42, "is": 292.1}},
            {"row": "recon noise 1.0 (no augmentation)", "role": "unite-b-noise-none",
             "paper": {"fid": 6.58, "rfid": 1.60, "is": 275.7}},
            {"row": "recon noise: gaussian sigma 0.7 on every sample (paper text)",
             "role": "unite-b-noise-gaussian0.7", "paper": {}},
            {"row": "time shift: none", "role": "unite-b-shift-none",
             "paper": {"fid": 3.14, "rfid": 1.41, "is": 267.1}},
            {"row": "time shift a = 0.5 (default)", "role": DEFAULT_120EP,
             "paper": {"fid": 2.71, "rfid": 1.01, "is": 282.2}},
            {"row": "time shift a = 0.75", "role": "unite-b-shift0.75",
             "paper": {"fid": 2.93, "rfid": 1.26, "is": 278.0}},
            {"row": "separate weights, stop-gradient", "role": "unite-b-separate",
             "paper": {"fid": 2.60, "rfid": 1.30}},
            {"row": "separate weights, no stop-gradient", "role": "unite-b-separate-nostopgrad",
             "paper": {"fid": 2.24, "rfid": 0.85}},
            {"row": "shared weights, no stop-gradient", "role": "unite-b-nostopgrad",
             "paper": {}},
            {"row": "shared weights, stop-gradient (UNITE; paper: 240 epochs)",
             "role": DEFAULT_120EP, "paper": {"fid": 2.12, "rfid": 1.1}},
            {"row": "1 flow step per reconstruction (Fig. 5; 14 steps = the default row)",
             "role": "unite-b-flow1", "paper": {"fid": 3.33}},
        ],
        "source": ["gen_primary", "recon_trained"],
        "note": "Every default row (recon noise s_min 0.7, shift 0.5, shared weights with "
        "stop-gradient, Fig. 5's 14 flow steps) is ONE run, the 120-epoch UNITE-B, as in the "
        "paper's Table 6; Table 2's UNITE-B row is the same run. Recon-noise rows follow the "
        "paper's labels (0.0 = full noise range, 1.0 = no augmentation), i.e. the released "
        "code's interpolation s*z0 + (1-s)*eps with s ~ U[s_min, 1] on half the batch; the "
        "gaussian row is the paper text's z0 + 0.7 eps (no paper number: the paper's runs used "
        "the code). The paper's UNITE stop-gradient numbers (2.12 / 1.1, Sec. 4) and Fig. 5's "
        "2.12 come from its 240-epoch run; ours is the 120-epoch default, like every other "
        "row. Paper gFIDs are at the best CFG w; ours are where the CFG w column says so.",
    },
}

TABLE_STEMS = tuple(PAPER)
SWEEP_STEM = "cfg_sweep"  # FID per guidance scale, one block per experiment (no paper column)
PROVENANCE_STEM = "provenance"  # every metric file's provenance block, one row each
ALL_STEMS = (*TABLE_STEMS, SWEEP_STEM, PROVENANCE_STEM)

# How the paper's number of a row was measured (the "Paper's protocol" column).
PAPER_PROTOCOLS = {
    "unite": "UNITE (torch-fidelity, ImageNet-train stats)",
    "adm": "ADM evaluator (VIRTUAL_imagenet256_labeled)",
    "jit": "JiT (torch-fidelity, JiT's ImageNet stats)",
}

# Metric keys as the evaluators write them: image metrics measured with the digits
# classifier carry a suffix, so they are never mistaken for Inception numbers.
FEATURE_SUFFIXES = {"": None, "_digits": "digits-classifier features, not Inception"}

# Rates the evaluators write as fractions and the paper prints in percent.
PERCENT = {"match_rate", "validity", "uniqueness", "struct_validity", "comp_validity",
           "validity_connected"}

SCALE_KEYS = (
    ("dataset", "{}"),
    ("model_size", "model {}"),
    ("train_steps", "{} steps"),
    ("epochs", "{} epochs"),
    ("num_samples", "{} samples"),
    ("num_inputs", "{} inputs"),
    ("solver", "{}"),
    ("steps", "{} solver steps"),
    ("nfe", "NFE {}"),
    ("cfg", "cfg {}"),
    ("validity_protocol", "validity {}"),
)
