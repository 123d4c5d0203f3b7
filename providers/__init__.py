"""Provider backends, one module per vendor; each imports its SDK only when used."""
