"""Studies declared before they run: published results (``actlab study``) and the source tutorials' claims
(``actlab claims``). See declaration.py for what a study holds and rules.py for how verdicts are decided."""

from actlab.experiments.studies import claims, papers  # noqa: F401  (declares every study)
from actlab.experiments.studies.declaration import Finding, Study, get_study, study_names
from actlab.experiments.studies.rules import CONTRADICTED, SUPPORTED, UNDECIDED, VERDICTS
from actlab.experiments.studies.running import run_study

__all__ = ["CONTRADICTED", "SUPPORTED", "UNDECIDED", "VERDICTS", "Finding", "Study", "get_study", "run_study",
           "study_names"]
