"""Generated data sets for the lessons' trained experiments, one module per task. Nothing is downloaded."""
