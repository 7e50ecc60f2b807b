"""evalsite: segmentation of spiral arms and bars, and their blinded expert evaluation."""
