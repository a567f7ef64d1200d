"""Reports: markdown pages, plots and scorecards of what the analyses and workflows
measured. Nothing here runs MD or evaluates a model."""
