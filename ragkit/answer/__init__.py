"""Answer: prompts with numbered sources, the token budget, compression, the usage ledger."""
