"""Project environments: shared, versioned Python environments built as Slurm jobs.

Pure modules: :mod:`.spec` (the requirements allowlist), :mod:`.space` (the project space's
layout, versions and states), :mod:`.build` (the build job's script). The command line is
:mod:`.cli`; :mod:`.unix` creates the projects' Unix groups and directories (demo: as root).
"""
