"""Models of the blinded rating app (studies, items, answers) arrive with the rating issue."""
