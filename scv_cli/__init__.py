"""The `scv` command line (CONTRACT §2): the top floor, above dagster_project. `scv_cli.main:main`
is the console script."""
