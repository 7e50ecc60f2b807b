"""A blinded rating study without Django: its design (who rates what, in which order), statistics and figures."""
