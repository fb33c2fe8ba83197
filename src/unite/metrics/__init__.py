"""Evaluation metrics: images (torch-fidelity FID/IS, rFID, PSNR/L1/LPIPS; feature networks,
image sets and reference statistics in their own modules), the guidance sweep, and the
molecule/crystal evaluators.

Every evaluator writes one JSON record in the team's result format (:mod:`unite.artifacts`:
``result`` / ``write_result``), so that the tables command reads all of them the same way. This
package stays import-light: torch and torch-fidelity load only inside the modules that need
them.
"""
