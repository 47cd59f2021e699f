"""The report's sections, one module per topic: data, model and diagnostics
(``model``); estimates and contrasts (``estimates``); predictive checks, LOO and
predictions (``checks``); sensitivity, small-study effects and the frequentist
analysis (``comparisons``); the reproducibility footer (``reproducibility``).
Each builder takes the fit (and what its section needs) and returns a
:class:`~bayes_poem.report.document.Section`."""
