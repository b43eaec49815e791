"""Data: reconstruction problems from files (:mod:`scicli.data.problem`) and training datasets of
patches and clips (:mod:`scicli.data.datasets`)."""
