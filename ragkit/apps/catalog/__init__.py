"""The product-QA bot over a structured catalog: catalog loading, tools, question understanding, claim checks."""
