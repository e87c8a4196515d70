"""Privacy operations beyond the drain's masking: an audited reveal of one login's originals (reveal.py),
moving tokens to a new masking key (rotation.py), and keeping plaintext PII out of logs (log_redaction.py)."""
