"""Reading imagery, site grids, chips, co-registration, and the scene simulator."""
