"""evalsite's Django-free core: file formats, pixels, sky geometry, the U-Net, the arc finder, measurements,
the synthetic survey, and the design and statistics of rating studies. Importable from a notebook; never
imports Django or the apps (an import-linter contract in ./tasks.sh test keeps it so)."""
