"""The paper's claims as seeded experiments with declared verdict rules (issue 10).

``plan``: the workflow config's ``claims:`` section, checked and expanded into experiments
(imported by the workflow while it parses). ``stats``: intervals over seeds and the verdict
rule. ``report``: ``python -m unite claims``, the verdict table and figure.
"""
