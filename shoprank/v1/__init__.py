"""Generated wire code for proto/shoprank/v1 (see proto/generate.py). Never edit by hand."""
