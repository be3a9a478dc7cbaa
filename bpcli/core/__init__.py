"""The spec's vocabulary, below every other layer but the engine: ``fields`` (Param, Table and the
checks every table of definitions is written with) and ``document`` (the YAML read safely with
each key's line and column, and Spec). ``spec/`` builds on these and on the tables of ``nn`` and
``train``; ``nn`` and ``train`` build on these alone, so each package sits on one floor."""
