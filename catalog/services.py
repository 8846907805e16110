"""Use cases of the catalog (listing, stock, imports) arrive with the catalog issue."""
